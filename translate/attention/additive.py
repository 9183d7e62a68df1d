"""Additive attention (Bahdanau et al. 2014): score(s, h) = v^T tanh(W s + U h).

Legend: B batch, T queries (decoder steps), S source positions, Dq query dim, Dk key dim, A hidden dim.
U h does not depend on the decoder step, so project_keys() runs it once per source sentence and each
decoding step only projects its own query.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from translate.attention.source_attention import SourceAttention


class AdditiveAttention(SourceAttention):
    """Bahdanau attention over keys (B,S,Dk), which are also the values (the encoder annotations)."""

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int, backend: str = "auto") -> None:
        super().__init__(backend)
        self.query_proj = nn.Linear(query_dim, attn_dim, bias=False)  # W
        self.key_proj = nn.Linear(key_dim, attn_dim)  # U (its bias is the score's only bias)
        self.v = nn.Parameter(torch.empty(attn_dim))  # v
        nn.init.uniform_(self.v, -1.0 / math.sqrt(attn_dim), 1.0 / math.sqrt(attn_dim))

    def project_keys(self, keys: Tensor) -> Tensor:
        """keys (B,S,Dk) -> U h (B,S,A); pass it as projected= at every decoding step."""
        return self.key_proj(keys)

    def attend(self, query, keys, projected, key_padding_mask, need_weights):
        return self.additive(query, keys, projected, key_padding_mask, need_weights)  # projected = U h
