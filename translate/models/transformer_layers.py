"""Transformer encoder and decoder layers (Vaswani et al. 2017, section 3.1) on the core's MultiHeadAttention.

Post-norm as in the paper, x = LayerNorm(x + Dropout(Sublayer(x))); pre-norm as an option,
x = x + Dropout(Sublayer(LayerNorm(x))), which trains more stably when deep (the model then adds a final
LayerNorm). Parameter names follow torch.nn.TransformerEncoderLayer/DecoderLayer where they mean the same.

Legend: B batch, S source length, T target length, E model dim, F feed-forward dim, H heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from translate.attention import KVCache, MultiHeadAttention
from translate.models.dropout import Dropout

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "swish": F.silu}  # swish = SiLU, x * sigmoid(x) (Marian)


class FeedForward(nn.Module):
    """FFN(x) = W_2 act(W_1 x + b_1) + b_2, applied to every position alike."""

    def __init__(self, embed_dim: int, ffn_dim: int, activation: str):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"model.activation={activation!r}: expected one of {', '.join(ACTIVATIONS)}")
        self.linear1 = nn.Linear(embed_dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, embed_dim)
        self.activation = ACTIVATIONS[activation]
        nn.init.xavier_uniform_(self.linear1.weight)
        nn.init.xavier_uniform_(self.linear2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.activation(self.linear1(x)))  # (B,T,E) -> (B,T,F) -> (B,T,E)


class EncoderLayer(nn.Module):
    """Self-attention over the source, then the feed-forward block."""

    def __init__(
        self, embed_dim: int, num_heads: int, ffn_dim: int, dropout: float, attention_dropout: float,
        activation: str, norm_first: bool, backend: str,
    ):  # fmt: skip
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(embed_dim, num_heads, dropout=attention_dropout, backend=backend)
        self.ffn = FeedForward(embed_dim, ffn_dim, activation)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.dropout = Dropout(dropout)

    def _sa(self, x: torch.Tensor, pad_mask: torch.Tensor | None) -> torch.Tensor:
        return self.dropout(self.self_attn(x, key_padding_mask=pad_mask)[0])

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None) -> torch.Tensor:
        """x (B,S,E), pad_mask (B,S) True at PAD -> (B,S,E)."""
        if self.norm_first:
            x = x + self._sa(self.norm1(x), pad_mask)
            return x + self.dropout(self.ffn(self.norm2(x)))
        x = self.norm1(x + self._sa(x, pad_mask))
        return self.norm2(x + self.dropout(self.ffn(x)))


class DecoderLayer(nn.Module):
    """Causal self-attention over the target prefix, cross-attention to the source, then the FFN."""

    def __init__(
        self, embed_dim: int, num_heads: int, ffn_dim: int, dropout: float, attention_dropout: float,
        activation: str, norm_first: bool, backend: str,
    ):  # fmt: skip
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(embed_dim, num_heads, dropout=attention_dropout, backend=backend)
        self.cross_attn = MultiHeadAttention(embed_dim, num_heads, dropout=attention_dropout, backend=backend)
        self.ffn = FeedForward(embed_dim, ffn_dim, activation)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.norm3 = nn.LayerNorm(embed_dim)
        self.dropout = Dropout(dropout)

    def _sa(self, x: torch.Tensor, cache: KVCache | None) -> torch.Tensor:
        return self.dropout(self.self_attn(x, causal=True, cache=cache)[0])

    def _ca(self, x, memory, memory_pad_mask, need_weights, group: int = 1):
        """group G > 1 (decoding): x (B,1,E) are G consecutive rows per memory row, attending as G queries
        of it; no weights then (need_weights is for teacher forcing)."""
        if group > 1:
            rows, steps, dim = x.shape
            grouped = x.reshape(rows // group, group * steps, dim)  # (B/G, G, E)
            out, _ = self.cross_attn(grouped, memory, key_padding_mask=memory_pad_mask)  # (B/G, G, E)
            return self.dropout(out.reshape(rows, steps, dim)), None
        out, weights = self.cross_attn(x, memory, key_padding_mask=memory_pad_mask, need_weights=need_weights)
        return self.dropout(out), weights

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | KVCache,
        memory_pad_mask: torch.Tensor | None = None,
        self_cache: KVCache | None = None,
        need_weights: bool = False,
        cross_group: int = 1,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B,T,E), memory (B,S,E) with memory_pad_mask (B,S) -> (B,T,E), cross weights (B,H,T,S) | None.

        The target needs no padding mask: it is right-padded and causal, so a real position never sees a PAD.
        Incremental decoding: x holds only the new step(s), self_cache keeps the earlier ones, and memory is
        this layer's cross_attn.cache_memory(memory, memory_pad_mask) (the mask is in it), with one row per
        source and cross_group = G decoder rows per source (beams).
        """
        if self.norm_first:
            x = x + self._sa(self.norm1(x), self_cache)
            ca, weights = self._ca(self.norm2(x), memory, memory_pad_mask, need_weights, cross_group)
            x = x + ca
            return x + self.dropout(self.ffn(self.norm3(x))), weights
        x = self.norm1(x + self._sa(x, self_cache))
        ca, weights = self._ca(x, memory, memory_pad_mask, need_weights, cross_group)
        x = self.norm2(x + ca)
        return self.norm3(x + self.dropout(self.ffn(x))), weights
