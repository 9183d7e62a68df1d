"""The plain-PyTorch attention reference: every other backend is tested against these two functions.

Legend: B batch, H heads, T queries, S keys, D head dim, A additive attention hidden dim, Dk value dim.
Readable first, fast never: both materialize the full (T, S) weights, and additive attention even the
(B, T, S, A) tanh tensor. A query row whose keys are all masked gets weights 0 and output 0, not NaN,
and no NaN gradient either.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from translate.attention.masks import attention_mask, check_key_padding_mask


def masked_softmax(scores: Tensor, allowed: Tensor | None) -> Tensor:
    """Softmax over the last dim restricted to allowed positions, in >= float32; rows with none allowed -> 0.

    Fully masked rows are softmaxed over finite zeros (not -inf, which gives NaN) and then zeroed, so
    neither the value nor the gradient sees a NaN.
    """
    scores = scores.to(torch.promote_types(scores.dtype, torch.float32))  # fp16/bf16 -> fp32, fp64 stays
    if allowed is None:
        return torch.softmax(scores, dim=-1)
    scores = scores.masked_fill(~allowed, float("-inf"))
    scores = scores.masked_fill(~allowed.any(dim=-1, keepdim=True), 0.0)
    return torch.softmax(scores, dim=-1).masked_fill(~allowed, 0.0)


def scaled_dot_product_math(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    key_padding_mask: Tensor | None = None,
    causal: bool = False,
    window: int | None = None,
    dropout_p: float = 0.0,
    scale: float | None = None,
) -> tuple[Tensor, Tensor]:
    """softmax(q k^T * scale + mask) v, with q (B,H,T,D), k (B,H,S,D), v (B,H,S,Dv).

    Returns out (B,H,T,Dv) and the attention weights (B,H,T,S) before dropout, in float32
    (float64 for float64 inputs).
    dropout_p is applied as given (the caller passes 0.0 in eval mode).
    """
    batch, _, queries, head_dim = q.shape
    keys = k.shape[-2]
    check_key_padding_mask(key_padding_mask, batch, keys)
    scale = 1.0 / math.sqrt(head_dim) if scale is None else scale
    scores = torch.matmul(q, k.transpose(-2, -1)) * scale  # (B,H,T,D) x (B,H,D,S) -> (B,H,T,S)
    allowed = attention_mask(queries, keys, key_padding_mask, causal, window, device=q.device)
    weights = masked_softmax(scores, allowed)  # (B,H,T,S) float32
    dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0.0 else weights
    out = torch.matmul(dropped.to(v.dtype), v)  # (B,H,T,S) x (B,H,S,Dv) -> (B,H,T,Dv)
    return out, weights


def attention_bias(allowed: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    """allowed (B|1, 1, T|1, S) bool -> the same mask as an additive bias: 0 where allowed, -inf elsewhere."""
    if allowed is None:
        return None
    bias = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return bias.masked_fill_(~allowed, float("-inf"))


def scaled_dot_product_biased(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    bias: Tensor | None = None,
    dropout_p: float = 0.0,
    scale: float | None = None,
) -> Tensor:
    """scaled_dot_product_math's output, in fewer passes over the (B,H,T,S) scores -> out (B,H,T,Dv).

    The mask comes as an additive bias (B|1, 1, T|1, S) (attention_bias), so the scale, the mask and q k^T
    are one baddbmm; the softmax runs in the scores' dtype (PyTorch accumulates bf16 and fp16 in fp32) and
    no weights are kept or returned. Every query row must see at least one key: a row that sees none would
    be NaN here, so the dispatcher sends such calls to scaled_dot_product_math.
    """
    batch, heads, queries, head_dim = q.shape
    keys, value_dim = k.shape[-2], v.shape[-1]
    scale = 1.0 / math.sqrt(head_dim) if scale is None else scale
    q3 = q.reshape(batch * heads, queries, head_dim)  # (B*H,T,D)
    k3 = k.reshape(batch * heads, keys, head_dim)  # (B*H,S,D)
    v3 = v.reshape(batch * heads, keys, value_dim)  # (B*H,S,Dv)
    if bias is None:
        bias3, beta = q3.new_zeros(1, 1, 1), 0.0  # beta 0: baddbmm ignores it
    else:
        rows = bias.shape[-2]
        if bias.shape[0] == 1:  # one mask for every sentence (causal, window): broadcast over B*H
            bias3 = bias.reshape(1, rows, keys)  # (1, T|1, S)
        else:  # per sentence (padding): one copy per head, (B*H, T|1, S), small next to the scores
            bias3 = bias.expand(batch, heads, rows, keys).reshape(batch * heads, rows, keys)
        beta = 1.0
    scores = torch.baddbmm(bias3, q3, k3.transpose(1, 2), beta=beta, alpha=scale)  # (B*H,T,D) x (B*H,D,S)
    weights = torch.softmax(scores, dim=-1)  # (B*H,T,S)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    out = torch.bmm(weights.to(v3.dtype), v3)  # (B*H,T,S) x (B*H,S,Dv) -> (B*H,T,Dv)
    return out.view(batch, heads, queries, value_dim)


def additive_math(
    wq: Tensor,
    uk: Tensor,
    v_weight: Tensor,
    values: Tensor,
    key_padding_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Bahdanau attention softmax_s(v^T tanh(W q_t + U h_s)) applied to values.

    wq (B,T,A) = W q, uk (B,S,A) = U h (projected once per source), v_weight (A,), values (B,S,Dk).
    Returns context (B,T,Dk) and weights (B,T,S) in float32 (float64 for float64 inputs).
    """
    batch, queries, _ = wq.shape
    keys = uk.shape[1]
    check_key_padding_mask(key_padding_mask, batch, keys)
    hidden = torch.tanh(wq[:, :, None, :] + uk[:, None, :, :])  # (B,T,1,A) + (B,1,S,A) -> (B,T,S,A)
    scores = torch.matmul(hidden, v_weight)  # (B,T,S,A) x (A,) -> (B,T,S)
    allowed = attention_mask(queries, keys, key_padding_mask, device=wq.device)
    weights = masked_softmax(scores, None if allowed is None else allowed[:, 0])  # (B,T,S)
    context = torch.matmul(weights.to(values.dtype), values)  # (B,T,S) x (B,S,Dk) -> (B,T,Dk)
    return context, weights
