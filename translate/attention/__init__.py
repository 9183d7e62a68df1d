"""The attention core: the only place in translate that computes attention weights.

functional.py is the plain-torch reference, backend.py chooses math / sdpa / triton in one function,
the modules (multihead, additive, luong) own only their projections.
"""

from translate.attention.additive import AdditiveAttention
from translate.attention.backend import (
    BACKENDS,
    additive_attention,
    resolve_backend,
    scaled_dot_product,
    set_backend,
)
from translate.attention.cache import KVCache
from translate.attention.functional import additive_math, masked_softmax, scaled_dot_product_math
from translate.attention.luong import LuongAttention
from translate.attention.masks import attention_mask, lengths_from_padding_mask
from translate.attention.multihead import MultiHeadAttention
from translate.attention.paged import BlockPool, PagedKVCache, paged_attention

__all__ = [
    "BACKENDS",
    "AdditiveAttention",
    "BlockPool",
    "KVCache",
    "LuongAttention",
    "MultiHeadAttention",
    "PagedKVCache",
    "additive_attention",
    "additive_math",
    "attention_mask",
    "lengths_from_padding_mask",
    "masked_softmax",
    "paged_attention",
    "resolve_backend",
    "scaled_dot_product",
    "scaled_dot_product_math",
    "set_backend",
]
