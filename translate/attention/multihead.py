"""Multi-head attention: the projections around the core; one module for self- and cross-attention.

Legend: B batch, T queries, S keys, E model dim, H heads, D head dim (E = H * D).
The attention itself is backend.scaled_dot_product; this module owns only the four projections and the
head split/merge, and keeps no per-call state (decoding state lives in the KVCache the caller passes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from translate.attention.backend import BACKENDS, scaled_dot_product
from translate.attention.cache import KVCache
from translate.attention.masks import check_window
from translate.attention.paged import PagedLayer


class MultiHeadAttention(nn.Module):
    """Vaswani et al. (2017) multi-head attention with padding, causal and sliding-window masks.

    window (optional): each query sees only keys within +-window of its position (local attention).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        backend: str = "auto",
        window: int | None = None,
    ) -> None:
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim {embed_dim} must be divisible by num_heads {num_heads}")
        if backend not in BACKENDS:
            raise ValueError(f"attention backend must be one of {'|'.join(BACKENDS)}, got {backend!r}")
        check_window(window)
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.dropout, self.backend, self.window = dropout, backend, window
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    def _split(self, x: Tensor) -> Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)  # (B,L,E) -> (B,H,L,D)

    def _projections(self, x: Tensor, *linears: nn.Linear, stack: bool) -> list[Tensor]:
        """x (B,L,E) -> one (B,H,L,D) per projection. stack (training): one matmul over their stacked weights,
        as torch.nn.MultiheadAttention's packed in_proj does; the same numbers as separate projections in one
        larger product (under autocast one cast of the stacked weights instead of one each); the parameters
        stay q_proj, k_proj and v_proj."""
        if not stack:
            return [self._split(lin(x)) for lin in linears]
        weight = torch.cat([lin.weight for lin in linears])  # (n*E, E)
        bias = None if linears[0].bias is None else torch.cat([lin.bias for lin in linears])  # (n*E,)
        parts = F.linear(x, weight, bias).chunk(len(linears), dim=-1)  # n x (B,L,E) views
        return [self._split(p) for p in parts]

    def cache_memory(self, memory: Tensor, key_padding_mask: Tensor | None = None) -> KVCache:
        """memory (B,S,E) and its mask (B,S) -> a KVCache of its keys and values (B,H,S,D), projected once for
        a whole decoding: pass it as forward's `memory` at every step (it follows reorder() and join())."""
        cache = KVCache()
        cache.store(self._split(self.k_proj(memory)), self._split(self.v_proj(memory)), key_padding_mask)
        return cache

    def forward(
        self,
        query: Tensor,
        memory: Tensor | KVCache | None = None,
        *,
        key_padding_mask: Tensor | None = None,
        causal: bool = False,
        cache: KVCache | PagedLayer | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """query (B,T,E), memory (B,S,E) or None (self-attention) -> (out (B,T,E), weights (B,H,T,S) | None).

        key_padding_mask (B,S) masks the keys: memory's for cross-attention, query's own (B,T) for
        self-attention. memory may be a KVCache from cache_memory() instead: cross-attention over keys/values
        projected once, with the mask they carry. `cache` serves self-attention: this call's keys/values (and
        mask) are appended and attended over with all before them; a PagedLayer (one new token per row, no
        mask) stores them in its blocks and attends through them.
        """
        batch, queries, _ = query.shape
        if memory is not None and cache is not None:
            raise ValueError("cache serves self-attention; cross-attention takes memory=cache_memory(memory)")
        stack = self.training and cache is None  # training: one matmul for the projections of one input
        if isinstance(memory, KVCache):
            if key_padding_mask is not None:
                raise ValueError("a cached memory carries its own key_padding_mask")
            q = self._split(self.q_proj(query))  # (B,H,T,D)
            k, v, key_padding_mask = memory.k, memory.v, memory.key_padding_mask  # (B,H,S,D), (B,S)
        elif memory is not None:
            q = self._split(self.q_proj(query))  # (B,H,T,D)
            k, v = self._projections(memory, self.k_proj, self.v_proj, stack=stack)  # (B,H,S,D) each
        else:
            projections = (self.q_proj, self.k_proj, self.v_proj)
            q, k, v = self._projections(query, *projections, stack=stack)  # (B,H,T,D) each
            if isinstance(cache, PagedLayer):  # writes k, v into the rows' blocks, reads through the tables
                if self.training or self.window is not None or key_padding_mask is not None:
                    raise ValueError("a paged cache serves decoding only: eval mode, no window, no mask")
                out = cache.attend(q, k, v, backend=self.backend)  # (B,H,1,D)
                return self.out_proj(out.transpose(1, 2).reshape(batch, queries, self.embed_dim)), None
            if cache is not None:
                k, v, key_padding_mask = cache.append(k, v, key_padding_mask)  # (B,H,S,D), S = cached + T
        out, weights = scaled_dot_product(
            q,
            k,
            v,
            key_padding_mask=key_padding_mask,
            causal=causal,
            window=self.window,
            dropout_p=self.dropout if self.training else 0.0,
            backend=self.backend,
            need_weights=need_weights,
        )  # (B,H,T,D), (B,H,T,S) | None
        out = out.transpose(1, 2).reshape(batch, queries, self.embed_dim)  # (B,H,T,D) -> (B,T,E)
        return self.out_proj(out), weights
