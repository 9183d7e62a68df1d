"""The Transformer encoder's layers and the decoder's cross-attention memory for inference on a CPU, their
products through the compiled kernel of models/cpu_linear.py.

Why: decoding spends about a quarter of its time encoding (greedy, the default model, the 2-core AMD EPYC),
and there MKL's sgemm, what the layer modules' F.linear calls, ran (1000, E) products 1.07-1.34x slower than
the kernel over its packed panels (translate/models/README.md, "Small products on a CPU"). `run_layers`
computes the EncoderLayer modules' maths on (B*S, E) rows with each layer's q, k and v in one product, and
`memory_caches` each decoder layer's cross-attention keys and values in one; the attention itself is the
dispatcher's (backend.scaled_dot_product with each module's backend), as in the modules. The results match
the modules' (`run_layers_reference`, `memory_caches_reference`; the tests compare them) to float rounding.

It serves inference only (`packed`: eval mode, autograd off, every product served by the kernel); anything
else (training, teacher forcing, CUDA, dynamic int8, no kernel) takes the modules.

Legend: B batch, S source length, E model dim, H heads, D head dim.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from translate.attention import KVCache
from translate.attention.backend import scaled_dot_product
from translate.models import cpu_linear
from translate.models.decoding_step import children, ffn_block, norm, product


def encoder_products(layer: nn.Module) -> dict[str, cpu_linear.Panels] | None:
    """An EncoderLayer's products packed for the kernel ({qkv, out, ffn1, ffn2}), or None where it does not
    serve them."""
    sa, ffn = children(layer, "self_attn", "ffn")
    q, k, v, out = children(sa, "q_proj", "k_proj", "v_proj", "out_proj")
    parts = {"qkv": (q, k, v), "out": (out,), "ffn1": children(ffn, "linear1"),
             "ffn2": children(ffn, "linear2")}  # fmt: skip
    return cpu_linear.panel_set(layer, parts)


def memory_products(layer: nn.Module) -> cpu_linear.Panels | None:
    """A DecoderLayer's cross-attention key and value projections stacked and packed, or None."""
    ca = children(layer, "cross_attn")[0]
    packed = cpu_linear.panel_set(ca, {"kv": tuple(children(ca, "k_proj", "v_proj"))})
    return None if packed is None else packed["kv"]


def packed(model: nn.Module) -> tuple[list[dict], list[cpu_linear.Panels]] | None:
    """(each encoder layer's products, each decoder layer's memory product), packed for the kernel, for one
    encode: None unless it is inference on a CPU with every product served (no autocast: its products are
    autocast's). The callers take it once per call and hand it on, so the weights' keys are checked once."""
    if model.training or torch.is_grad_enabled() or torch.is_autocast_enabled("cpu"):
        return None
    encoder = [encoder_products(layer) for layer in model.encoder_layers]
    memory = [memory_products(layer) for layer in model.decoder_layers]
    return None if any(p is None for p in encoder + memory) else (encoder, memory)


def applies(model: nn.Module) -> bool:
    """Whether `packed` serves this model now."""
    return packed(model) is not None


def _heads(x: Tensor, batch: int, parts: int, heads: int) -> tuple[Tensor, ...]:
    """(B*S, parts*E) -> parts x (B,H,S,D) views."""
    return x.view(batch, -1, parts, heads, x.shape[-1] // (parts * heads)).permute(2, 0, 3, 1, 4).unbind(0)


def _self_attention(attn: nn.Module, x: Tensor, batch: int, pad_mask: Tensor, packed: dict) -> Tensor:
    """x (B*S,E) -> (B*S,E): self-attention over the source, PAD keys masked."""
    q, k, v = _heads(product(x, packed["qkv"]), batch, 3, attn.num_heads)  # 3 x (B,H,S,D)
    out, _ = scaled_dot_product(q, k, v, key_padding_mask=pad_mask, window=attn.window, backend=attn.backend)
    return product(out.transpose(1, 2).reshape(x.shape), packed["out"])  # (B,H,S,D) -> (B*S,E) -> (B*S,E)


def run_layers_reference(layers: nn.ModuleList, x: Tensor, pad_mask: Tensor) -> Tensor:
    """x (B,S,E) -> (B,S,E): each EncoderLayer module in turn."""
    for layer in layers:
        x = layer(x, pad_mask)
    return x


def run_layers(layers: nn.ModuleList, x: Tensor, pad_mask: Tensor, products: list[dict]) -> Tensor:
    """x (B,S,E), pad_mask (B,S) True at PAD -> (B,S,E): the encoder layers, post-norm or pre-norm as each is,
    with `products` = packed(model)[0]."""
    batch, length, dim = x.shape
    h = x.reshape(batch * length, dim)  # (B*S,E)
    for layer, packed in zip(layers, products, strict=True):
        sa, ffn, norm1, norm2 = children(layer, "self_attn", "ffn", "norm1", "norm2")
        if layer.norm_first:
            h = h + _self_attention(sa, norm(norm1, h), batch, pad_mask, packed)
            h = h + ffn_block(ffn, norm(norm2, h), packed)
        else:
            h = norm(norm1, h + _self_attention(sa, h, batch, pad_mask, packed))
            h = norm(norm2, h + ffn_block(ffn, h, packed))
    return h.view(batch, length, dim)


def memory_caches_reference(layers: nn.ModuleList, memory: Tensor, pad_mask: Tensor) -> list[KVCache]:
    """Per decoder layer its cross-attention's cache_memory: the source's keys and values (B,H,S,D)."""
    return [layer.cross_attn.cache_memory(memory, pad_mask) for layer in layers]


def memory_caches(layers: nn.ModuleList, memory: Tensor, pad_mask: Tensor,
                  products: list[cpu_linear.Panels]) -> list[KVCache]:  # fmt: skip
    """memory_caches_reference's caches, each layer's keys and values from one product, with `products` =
    packed(model)[1]."""
    batch, length, dim = memory.shape
    rows = memory.reshape(batch * length, dim)  # (B*S,E)
    caches = []
    for layer, kv in zip(layers, products, strict=True):
        heads = layer.cross_attn.num_heads
        k, v = _heads(product(rows, kv), batch, 2, heads)  # 2 x (B,H,S,D)
        cache = KVCache()
        cache.store(k, v, pad_mask)
        caches.append(cache)
    return caches
