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

import weakref

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


# Per decoder layer: the key of the weights it was made from, and the (K,N) copies.
_kn_cache: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, dict]] = weakref.WeakKeyDictionary()


def kn_weights(layer: nn.Module) -> dict[str, tuple[Tensor, Tensor | None]] | None:
    """The layer's products with their weights as (K,N) copies (in features x out features, contiguous), the
    self-attention's q, k and v stacked into one: {name: (weight (K,N), bias (N,) | None)}, made once per
    weight version (another tensor or an in-place update: the tensor's version counter). None off a CPU, for
    other dtypes and for dynamic int8's quantized layers (their own products).

    Why: MKL's sgemm reads a (K,N) right-hand matrix faster than the (N,K) one F.linear hands it, most at few
    rows (one row, 256 -> 1024: 70 against 125 us; 100 rows, the stacked 256 -> 768: 581 against 634 us, on
    the 2-core AMD EPYC); the FFN's second product (1024 -> 256) is as fast either way and keeps its weight.
    From 4 rows on MKL's kernel and its sums are the same (bitwise the same outputs); at 1 and 2 rows it
    takes a matrix-vector path whose sums are ordered differently (about 1e-7 relative).
    """
    sa, ca, ffn = layer.self_attn, layer.cross_attn, layer.ffn
    parts = {"qkv": (sa.q_proj, sa.k_proj, sa.v_proj), "self_out": (sa.out_proj,), "cross_q": (ca.q_proj,),
             "cross_out": (ca.out_proj,), "ffn1": (ffn.linear1,)}  # fmt: skip
    linears = [linear for group in parts.values() for linear in group]
    if any(type(linear) is not nn.Linear for linear in linears):
        return None
    if linears[0].weight.device.type != "cpu" or any(lin.weight.dtype != torch.float32 for lin in linears):
        return None
    tensors = [t for linear in linears for t in (linear.weight, linear.bias) if t is not None]
    key = tuple((t.data_ptr(), t._version, tuple(t.shape)) for t in tensors)
    cached = _kn_cache.get(layer)
    if cached is None or cached[0] != key:
        weights = {}
        for name, group in parts.items():
            weight = torch.cat([linear.weight.detach() for linear in group]).t().contiguous()  # (K,N)
            bias = None if group[0].bias is None else torch.cat([linear.bias.detach() for linear in group])
            weights[name] = (weight, bias)
        cached = (key, weights)
        _kn_cache[layer] = cached
    return cached[1]


def _mm(x: Tensor, product: tuple[Tensor, Tensor | None]) -> Tensor:
    """x (R,K) @ weight (K,N) + bias -> (R,N)."""
    weight, bias = product
    return torch.mm(x, weight) if bias is None else torch.addmm(bias, x, weight)


def _self_attention(attn: nn.Module, x: Tensor, cache: KVCache, kn: dict | None) -> Tensor:
    """x (B,E) -> (B,E): this step's query over the cached keys and its own, appended to the cache."""
    rows, heads, dim = x.shape[0], attn.num_heads, attn.head_dim
    if kn is None:
        q, k, v = (_linear(p, x).view(rows, heads, 1, dim) for p in (attn.q_proj, attn.k_proj, attn.v_proj))
    else:
        q, k, v = _mm(x, kn["qkv"]).view(rows, 3, heads, 1, dim).unbind(1)  # (B,3E) -> 3 x (B,H,1,D)
    k, v, mask = cache.append(k, v)  # (B,H,S,D), mask (B,S) | None (rows joined a running batch)
    out, _ = scaled_dot_product(q, k, v, key_padding_mask=mask, causal=True, window=attn.window,
                                backend=attn.backend)  # fmt: skip
    out = out.reshape(rows, heads * dim)  # (B,H,1,D) -> (B,E)
    return _linear(attn.out_proj, out) if kn is None else _mm(out, kn["self_out"])


def _cross_attention(attn: nn.Module, x: Tensor, memory: KVCache, group: int, kn: dict | None) -> Tensor:
    """x (B,E) -> (B,E): rows as G queries of their source's cached keys (B/G,H,S,D)."""
    rows, heads, dim = x.shape[0], attn.num_heads, attn.head_dim
    q = _linear(attn.q_proj, x) if kn is None else _mm(x, kn["cross_q"])  # (B,E)
    q = q.view(rows // group, group, heads, dim).transpose(1, 2)  # (B/G,H,G,D)
    out, _ = scaled_dot_product(q, memory.k, memory.v, key_padding_mask=memory.key_padding_mask,
                                window=attn.window, backend=attn.backend)  # fmt: skip
    out = out.transpose(1, 2).reshape(rows, heads * dim)  # (B/G,H,G,D) -> (B,E)
    return _linear(attn.out_proj, out) if kn is None else _mm(out, kn["cross_out"])


def _ffn(ffn: nn.Module, x: Tensor, kn: dict | None) -> Tensor:
    hidden = _linear(ffn.linear1, x) if kn is None else _mm(x, kn["ffn1"])  # (B,F)
    return _linear(ffn.linear2, ffn.activation(hidden))  # (B,E)


def run_layers(layers: nn.ModuleList, x: Tensor, caches: list[KVCache], cross: list[KVCache],
               group: int) -> Tensor:  # fmt: skip
    """x (B,E) -> (B,E): the decoder layers' step, post-norm or pre-norm as each layer is."""
    for layer, self_cache, cross_cache in zip(layers, caches, cross):
        kn = kn_weights(layer)
        if layer.norm_first:
            x = x + _self_attention(layer.self_attn, _norm(layer.norm1, x), self_cache, kn)
            x = x + _cross_attention(layer.cross_attn, _norm(layer.norm2, x), cross_cache, group, kn)
            x = x + _ffn(layer.ffn, _norm(layer.norm3, x), kn)
        else:
            x = _norm(layer.norm1, x + _self_attention(layer.self_attn, x, self_cache, kn))
            x = _norm(layer.norm2, x + _cross_attention(layer.cross_attn, x, cross_cache, group, kn))
            x = _norm(layer.norm3, x + _ffn(layer.ffn, x, kn))
    return x
