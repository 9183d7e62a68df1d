"""The Transformer decoder's layers for one incremental decoding step: the layers' own weights, fewer ops.

Why: a decoding step is a few dozen rows, so what it costs beyond its matrix products is per-op overhead:
through the layer modules (DecoderLayer -> MultiHeadAttention -> nn.Linear, each call with its hooks, the
(B,1,E) shapes split and merged per projection, identity dropouts) a step of the default model ran some 700
aten calls. `run_layers` computes the same maths on (B,E) rows, calling F.linear, F.layer_norm and the
attention dispatcher (backend.scaled_dot_product, with each module's backend) directly, and on a CPU runs
the layers' products through the compiled kernel of models/cpu_linear.py (`packed_products`). With the
layers' own weights (no kernel) the logits are bitwise those of the modules' path (`run_layers_reference`,
which the tests compare it with, and which training and teacher forcing keep); through the kernel they
match to float rounding.

It serves inference only (`applies`: eval mode, autograd off); anything else takes the modules.

Legend: B decoder rows, G rows per source (beam), E model dim, H heads, D head dim.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from translate.attention import KVCache
from translate.attention.backend import scaled_dot_product
from translate.models import cpu_linear


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


def children(module: nn.Module, *names: str) -> list[nn.Module]:
    """Submodules from the module's own table: nn.Module.__getattr__ costs about 1 us a lookup (torch 2.13),
    and a step of the default model made some 200 of them."""
    table = module._modules
    return [table[name] for name in names]


def norm(layer: nn.LayerNorm, x: Tensor) -> Tensor:
    params = layer._parameters  # (as _children: no __getattr__ per step)
    return F.layer_norm(x, layer.normalized_shape, params["weight"], params["bias"], layer.eps)


def packed_products(layer: nn.Module) -> dict[str, cpu_linear.Panels] | None:
    """The layer's products with their weights packed for the compiled kernel (models/cpu_linear.py), the
    self-attention's q, k and v stacked into one product: {name: Panels}, made once per weight version; None
    where the kernel does not serve them (not built, off a CPU, another dtype, dynamic int8's layers).

    Why: at a decoding step's rows the kernel ran these products 0.9-2.7x as fast as MKL's sgemm on one
    thread of the 2-core AMD EPYC and 1.1-5.7x on two (translate/models/README.md, "Small products on a CPU").
    """
    sa, ca, ffn = children(layer, "self_attn", "cross_attn", "ffn")
    q, k, v, self_out = children(sa, "q_proj", "k_proj", "v_proj", "out_proj")
    cross_q, cross_out = children(ca, "q_proj", "out_proj")
    parts = {"qkv": (q, k, v), "self_out": (self_out,), "cross_q": (cross_q,), "cross_out": (cross_out,),
             "ffn1": children(ffn, "linear1"), "ffn2": children(ffn, "linear2")}  # fmt: skip
    return cpu_linear.panel_set(layer, parts)


def product(x: Tensor, packed: cpu_linear.Panels, relu: bool = False) -> Tensor:
    """x (R,K) float32 on a CPU, autograd off (what `packed_products` and the callers' `applies` ensure) ->
    (R,N) through the compiled kernel; a view whose columns are strided is copied first."""
    return cpu_linear.linear(x if x.stride(-1) == 1 else x.contiguous(), packed, relu)


def _self_attention(attn: nn.Module, x: Tensor, cache: KVCache, packed: dict | None) -> Tensor:
    """x (B,E) -> (B,E): this step's query over the cached keys and its own, appended to the cache."""
    rows, heads, dim = x.shape[0], attn.num_heads, attn.head_dim
    if packed is None:
        q, k, v = (_linear(p, x).view(rows, heads, 1, dim) for p in (attn.q_proj, attn.k_proj, attn.v_proj))
    else:
        q, k, v = product(x, packed["qkv"]).view(rows, 3, heads, 1, dim).unbind(1)  # (B,3E) -> 3 x (B,H,1,D)
    k, v, mask = cache.append(k, v)  # (B,H,S,D), mask (B,S) | None (rows joined a running batch)
    out, _ = scaled_dot_product(q, k, v, key_padding_mask=mask, causal=True, window=attn.window,
                                backend=attn.backend)  # fmt: skip
    out = out.reshape(rows, heads * dim)  # (B,H,1,D) -> (B,E)
    return _linear(attn.out_proj, out) if packed is None else product(out, packed["self_out"])


def _cross_attention(attn: nn.Module, x: Tensor, memory: KVCache, group: int, packed: dict | None) -> Tensor:
    """x (B,E) -> (B,E): rows as G queries of their source's cached keys (B/G,H,S,D)."""
    rows, heads, dim = x.shape[0], attn.num_heads, attn.head_dim
    q = _linear(attn.q_proj, x) if packed is None else product(x, packed["cross_q"])  # (B,E)
    q = q.view(rows // group, group, heads, dim).transpose(1, 2)  # (B/G,H,G,D)
    out, _ = scaled_dot_product(q, memory.k, memory.v, key_padding_mask=memory.key_padding_mask,
                                window=attn.window, backend=attn.backend)  # fmt: skip
    out = out.transpose(1, 2).reshape(rows, heads * dim)  # (B/G,H,G,D) -> (B,E)
    return _linear(attn.out_proj, out) if packed is None else product(out, packed["cross_out"])


def ffn_block(ffn: nn.Module, x: Tensor, packed: dict | None) -> Tensor:
    if packed is None:
        return _linear(ffn.linear2, ffn.activation(_linear(ffn.linear1, x)))  # (B,F) -> (B,E)
    if ffn.activation is F.relu:
        return product(product(x, packed["ffn1"], relu=True), packed["ffn2"])  # ReLU fused into the first
    return product(ffn.activation(product(x, packed["ffn1"])), packed["ffn2"])


def run_layers(layers: nn.ModuleList, x: Tensor, caches: list[KVCache], cross: list[KVCache],
               group: int) -> Tensor:  # fmt: skip
    """x (B,E) -> (B,E): the decoder layers' step, post-norm or pre-norm as each layer is."""
    kernel = not torch.is_autocast_enabled("cpu")  # under autocast: the products autocast chooses
    for layer, self_cache, cross_cache in zip(layers, caches, cross):
        packed = packed_products(layer) if kernel else None
        names = ("self_attn", "cross_attn", "ffn", "norm1", "norm2", "norm3")
        sa, ca, ffn, norm1, norm2, norm3 = children(layer, *names)
        if layer.norm_first:
            x = x + _self_attention(sa, norm(norm1, x), self_cache, packed)
            x = x + _cross_attention(ca, norm(norm2, x), cross_cache, group, packed)
            x = x + ffn_block(ffn, norm(norm3, x), packed)
        else:
            x = norm(norm1, x + _self_attention(sa, x, self_cache, packed))
            x = norm(norm2, x + _cross_attention(ca, x, cross_cache, group, packed))
            x = norm(norm3, x + ffn_block(ffn, x, packed))
    return x
