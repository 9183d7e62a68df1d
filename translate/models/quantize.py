"""PyTorch dynamic int8: every Linear, GRU and GRUCell of a model gets int8 weights, activations stay float.

torch.ao.quantization.quantize_dynamic swaps each module for its dynamically quantized twin (weights int8
per tensor, activations quantized on the fly per batch, float out), so all three models keep their
interface: search runs on the result unchanged. Embeddings, layer norms, the additive attention's v and the
attention maths stay float32. CPU only (fbgemm/x86 kernels). This is the int8 path for RNNencdec and
RNNsearch, which CTranslate2 cannot hold, and works for the Transformer too.
"""

from __future__ import annotations

import torch
from torch import nn

from translate.models.interface import Seq2Seq

QUANTIZED = (nn.Linear, nn.GRU, nn.GRUCell)


def quantize_dynamic_int8(model: Seq2Seq) -> Seq2Seq:
    """A quantized copy of `model` (eval mode, CPU); the original is left as it is."""
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ValueError("dynamic int8 quantization runs on the CPU only (use --device cpu)")
    return torch.ao.quantization.quantize_dynamic(model.eval(), set(QUANTIZED), dtype=torch.qint8)


def float_weight(linear: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(weight (out, in), bias (out,) | None) of an nn.Linear or of its dynamic int8 twin, as float tensors
    (the int8 weight dequantized): what a shortlist gathers its rows of the output projection from."""
    if isinstance(linear, nn.Linear):
        return linear.weight.detach(), None if linear.bias is None else linear.bias.detach()
    if isinstance(linear, torch.ao.nn.quantized.dynamic.Linear):
        return linear.weight().dequantize(), linear.bias()
    raise TypeError(f"float_weight: {type(linear).__name__} is neither nn.Linear nor its dynamic int8 twin")


def float_modules_left(model: nn.Module) -> list[str]:
    """Names of Linear/GRU/GRUCell modules that are still float (empty after quantize_dynamic_int8)."""
    return [name for name, m in model.named_modules() if type(m) in QUANTIZED]
