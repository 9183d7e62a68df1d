"""Luong et al. (2015) global attention: dot, general and concat scores.

Legend: B batch, T queries (decoder steps), S source positions, Dq query dim, Dk key dim, A concat hidden dim.
  dot:     score(h_t, h_s) = h_t . h_s                 (Dq == Dk)
  general: score(h_t, h_s) = h_t . (W_a h_s)
  concat:  score(h_t, h_s) = v_a^T tanh(W_a [h_t; h_s]) = v_a^T tanh(W_1 h_t + W_2 h_s)
dot and general are unscaled dot-product attention (one head, scale 1), so they run on every backend;
concat is the additive form and runs on the additive backends. W_a h_s (general) and W_2 h_s (concat)
do not depend on the step: project_keys() projects the keys once per source sentence.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from translate.attention.backend import scaled_dot_product
from translate.attention.source_attention import SourceAttention

SCORES = ("dot", "general", "concat")


class LuongAttention(SourceAttention):
    """Global attention over keys (B,S,Dk), which are also the values; attn_dim (concat) defaults to Dq."""

    def __init__(
        self,
        query_dim: int,
        key_dim: int,
        score: str = "dot",
        backend: str = "auto",
        attn_dim: int | None = None,
    ) -> None:
        super().__init__(backend)
        if score not in SCORES:
            raise ValueError(f"Luong score must be one of {'|'.join(SCORES)}, got {score!r}")
        if score == "dot" and query_dim != key_dim:
            raise ValueError(f"Luong 'dot' needs query_dim == key_dim, got {query_dim} and {key_dim}")
        self.score = score
        if score == "general":
            self.key_proj = nn.Linear(key_dim, query_dim, bias=False)  # W_a
        elif score == "concat":
            attn_dim = query_dim if attn_dim is None else attn_dim
            self.query_proj = nn.Linear(query_dim, attn_dim, bias=False)  # W_1
            self.key_proj = nn.Linear(key_dim, attn_dim, bias=False)  # W_2
            self.v = nn.Parameter(torch.empty(attn_dim))  # v_a
            nn.init.uniform_(self.v, -1.0 / math.sqrt(attn_dim), 1.0 / math.sqrt(attn_dim))

    def project_keys(self, keys: Tensor) -> Tensor | None:
        """keys (B,S,Dk) -> W_a h_s (B,S,Dq) for general, W_2 h_s (B,S,A) for concat, None for dot."""
        return None if self.score == "dot" else self.key_proj(keys)

    def attend(self, query, keys, projected, key_padding_mask, need_weights):
        if self.score == "concat":  # Bahdanau's score v^T tanh(W_1 q + W_2 h) without U's bias
            return self.additive(query, keys, projected, key_padding_mask, need_weights)  # projected = W_2 h
        scored_keys = keys if projected is None else projected  # (B,S,Dq)
        context, weights = scaled_dot_product(
            query[:, None],  # (B,1,T,Dq): one head
            scored_keys[:, None],  # (B,1,S,Dq)
            keys[:, None],  # (B,1,S,Dk)
            key_padding_mask=key_padding_mask,
            scale=1.0,
            backend=self.backend,
            need_weights=need_weights,
        )  # (B,1,T,Dk), (B,1,T,S) | None
        return context[:, 0], None if weights is None else weights[:, 0]
