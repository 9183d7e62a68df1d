"""Decoding's attention on the CPU: a few queries (one per step, or a beam's G per source) over cached keys.

Why: at a decoding step every (row, head) pair attends with one query (cross-attention with beams: G), so
the work is B*H tiny products that read the whole cache once. PyTorch's CPU SDPA kernel runs them blockwise
with its own overhead per pair, and the boolean mask is rebuilt and applied around it at every call. Here
they are two batched matmuls over (B*H) views of the caches (no copy: the self-attention buffer and the
contiguous cross-attention keys merge their first two dims), the mask filled in place in between. On the
2-core AMD EPYC (Zen 2, AVX2) a greedy step of the default model took 4-10% less at 16 to 300 rows
(translate/search/README.md, "Where a decoding step's time goes").

The same softmax(q k^T * scale + mask) v as `scaled_dot_product_math`, which the tests compare it with; a
row whose keys are all masked gets 0, as in every backend. backend.scaled_dot_product calls it in CPU
inference (no autograd, no dropout, no window, no weights, not causal, fp32/fp64) with at most FEW queries.

Legend: B batch, H heads, T queries (<= FEW), S keys, D head dim, Dv value dim.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

FEW = 8  # queries per (row, head) up to which this form runs (beam search's grouped cross-attention: K)


def applies(q: Tensor, k: Tensor, causal: bool, window: int | None, dropout_p: float) -> bool:
    """Whether this call is one the few-query form serves (see the module docstring)."""
    return (
        q.device.type == "cpu"
        and q.shape[-2] <= FEW
        and not causal
        and window is None
        and dropout_p == 0.0
        and q.dtype in (torch.float32, torch.float64)
        and not (torch.is_grad_enabled() and (q.requires_grad or k.requires_grad))
    )


def scaled_dot_product_few(
    q: Tensor, k: Tensor, v: Tensor, key_padding_mask: Tensor | None = None, scale: float | None = None
) -> Tensor:
    """q (B,H,T,D), k (B,H,S,D), v (B,H,S,Dv), key_padding_mask (B,S) True = ignore -> out (B,H,T,Dv)."""
    B, H, T, D = q.shape
    S, Dv = k.shape[2], v.shape[-1]
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    keys = k.reshape(B * H, S, D)  # views for the caches decoding keeps (a copy otherwise)
    values = v.reshape(B * H, S, Dv)
    scores = torch.bmm((q * scale).reshape(B * H, T, D), keys.transpose(1, 2)).view(B, H, T, S)
    if key_padding_mask is not None:
        scores.masked_fill_(key_padding_mask[:, None, None, :], float("-inf"))
    weights = scores.softmax(-1)  # (B,H,T,S)
    out = torch.bmm(weights.view(B * H, T, S), values).view(B, H, T, Dv)
    if key_padding_mask is not None:
        empty = key_padding_mask.all(-1)  # (B,) rows that see no key: NaN above, 0 in every backend
        if bool(empty.any()):
            out.masked_fill_(empty[:, None, None, None], 0.0)
    return out
