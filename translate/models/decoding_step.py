"""The Transformer decoder's layers for one incremental decoding step: the layers' own weights, fewer ops.

Why: a decoding step is a few dozen rows, so what it costs beyond its matrix products is per-op overhead:
through the layer modules (DecoderLayer -> MultiHeadAttention -> nn.Linear, each call with its hooks, the
(B,1,E) shapes split and merged per projection, identity dropouts) a step of the default model ran some 700
aten calls. `run_layers` computes the same maths on (B,E) rows, calling F.linear, F.layer_norm and the
attention dispatcher (backend.scaled_dot_product, with each module's backend) directly: the same kernels on
the same values in the same order, so the logits are bitwise those of the modules' path
(`run_layers_reference`, which the tests compare it with, and which training and teacher forcing keep).

It serves inference only (`applies`: eval mode, autograd off); anything else takes the modules.

Legend: B decoder rows, G rows per source (beam), E model dim, H heads, D head dim.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from translate.attention import KVCache
from translate.attention.backend import scaled_dot_product


def applies(model: nn.Module, caches) -> bool:
    """Decoding in eval mode without autograd over one KVCache per layer (a paged cache keeps the modules)."""
    return (
        not model.training
        and not torch.is_grad_enabled()
        and isinstance(caches, list)
        and all(type(c) is KVCache for c in caches)
    )


def run_layers_reference(layers: nn.ModuleList, x: Tensor, caches, cross, group: int) -> Tensor:
    """x (B,E) -> (B,E): each DecoderLayer module in turn, x as (B,1,E)."""
    h = x[:, None]  # (B,1,E)
    for layer, self_cache, cross_cache in zip(layers, caches, cross):
        h, _ = layer(h, cross_cache, self_cache=self_cache, cross_group=group)
    return h[:, 0]


def _linear(layer: nn.Module, x: Tensor) -> Tensor:
    """layer(x) without the module call for a plain nn.Linear (dynamic int8's quantized Linear: its own)."""
    return F.linear(x, layer.weight, layer.bias) if type(layer) is nn.Linear else layer(x)


def _norm(norm: nn.LayerNorm, x: Tensor) -> Tensor:
    return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)


def _self_attention(attn: nn.Module, x: Tensor, cache: KVCache) -> Tensor:
    """x (B,E) -> (B,E): this step's query over the cached keys and its own, appended to the cache."""
    rows, heads, dim = x.shape[0], attn.num_heads, attn.head_dim
    q, k, v = (_linear(p, x).view(rows, heads, 1, dim) for p in (attn.q_proj, attn.k_proj, attn.v_proj))
    k, v, mask = cache.append(k, v)  # (B,H,S,D), mask (B,S) | None (rows joined a running batch)
    out, _ = scaled_dot_product(q, k, v, key_padding_mask=mask, causal=True, window=attn.window,
                                backend=attn.backend)  # fmt: skip
    return _linear(attn.out_proj, out.reshape(rows, heads * dim))  # (B,H,1,D) -> (B,E)


def _cross_attention(attn: nn.Module, x: Tensor, memory: KVCache, group: int) -> Tensor:
    """x (B,E) -> (B,E): rows as G queries of their source's cached keys (B/G,H,S,D)."""
    rows, heads, dim = x.shape[0], attn.num_heads, attn.head_dim
    q = _linear(attn.q_proj, x).view(rows // group, group, heads, dim).transpose(1, 2)  # (B/G,H,G,D)
    out, _ = scaled_dot_product(q, memory.k, memory.v, key_padding_mask=memory.key_padding_mask,
                                window=attn.window, backend=attn.backend)  # fmt: skip
    return _linear(attn.out_proj, out.transpose(1, 2).reshape(rows, heads * dim))  # (B/G,H,G,D) -> (B,E)


def run_layers(layers: nn.ModuleList, x: Tensor, caches: list[KVCache], cross: list[KVCache],
               group: int) -> Tensor:  # fmt: skip
    """x (B,E) -> (B,E): the decoder layers' step, post-norm or pre-norm as each layer is."""
    for layer, self_cache, cross_cache in zip(layers, caches, cross):
        ffn = layer.ffn
        if layer.norm_first:
            x = x + _self_attention(layer.self_attn, _norm(layer.norm1, x), self_cache)
            x = x + _cross_attention(layer.cross_attn, _norm(layer.norm2, x), cross_cache, group)
            x = x + _linear(ffn.linear2, ffn.activation(_linear(ffn.linear1, _norm(layer.norm3, x))))
        else:
            x = _norm(layer.norm1, x + _self_attention(layer.self_attn, x, self_cache))
            x = _norm(layer.norm2, x + _cross_attention(layer.cross_attn, x, cross_cache, group))
            x = _norm(layer.norm3, x + _linear(ffn.linear2, ffn.activation(_linear(ffn.linear1, x))))
    return x
