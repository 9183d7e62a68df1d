"""The attention core: the only place in translate that computes attention weights."""

from translate.attention.functional import additive_math, masked_softmax, scaled_dot_product_math
from translate.attention.masks import attention_mask, lengths_from_padding_mask

__all__ = [
    "additive_math",
    "attention_mask",
    "lengths_from_padding_mask",
    "masked_softmax",
    "scaled_dot_product_math",
]
