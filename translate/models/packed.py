"""Decoding's output projection with its weight packed once: our kernel's panels, else oneDNN's (CPU, fp32).

Why: on an x86 CPU torch's F.linear is MKL's sgemm, which packs the whole right-hand matrix again on every
call. At a decoding step's few rows the (V, E) output weight is the largest operand by far, and repacking it
costs as much as the product. oneDNN's inner product over a weight packed once for it (`torch.ops.mkldnn`'s
`_reorder_linear_weight` and `_linear_pointwise`, what inductor's CPU freezing uses) skips that: on the 2-core
AMD EPYC (Zen 2, AVX2) the default model's (100, 256) x (256, 8000) product took 6.2 ms against 8.2 ms, and
greedy decoding of 500 test verses ran 6.5% faster (translate/search/README.md, "Where a decoding step's time
goes").

The packed copy is made on first use and kept per layer until its weight changes (another tensor, or an
in-place update such as load_state_dict: the tensor's version counter). Only a frozen weight is packed
(requires_grad False, what load_model returns): a fused optimizer step (AdamW(fused=True), the training
default) updates weights without moving their version counter, so validation during training keeps
F.linear. Our compiled kernel (models/cpu_linear.py) serves before oneDNN where it built; `linear_reference`
is the layer's own product (F.linear); the tests compare them. Anything else (CUDA, another dtype,
autograd, autocast, dynamic int8's quantized layer, a torch without oneDNN or with it switched off) takes
the layer's own product.

Legend: R rows, E input features, V output features.
"""

from __future__ import annotations

import logging
import weakref

import torch
from torch import Tensor, nn

from translate.models import cpu_linear

log = logging.getLogger(__name__)

# The row count oneDNN packs the weight for. Packed for 1 row, the (8000, 256) weight ran 16 and 100 rows 1.4x
# and 1.15x slower than packed for 8 to 4,096 rows, which all ran alike (1 to 300 rows, the Zen 2 EPYC).
PACK_ROWS = 64

_packed: weakref.WeakKeyDictionary[nn.Linear, tuple[tuple, Tensor]] = weakref.WeakKeyDictionary()
_broken: list[str] = []  # the reason oneDNN's packed product failed once in this process (then F.linear)


def linear_reference(layer: nn.Module, x: Tensor) -> Tensor:
    """x (R, E) -> (R, V): the layer's own product (F.linear for an nn.Linear; dynamic int8's own)."""
    return layer(x)


def applies(layer: nn.Module, x: Tensor) -> bool:
    """Whether `linear` takes the packed path: fp32 inference on a CPU with oneDNN, a plain nn.Linear with a
    frozen weight (requires_grad False, as load_model gives: a fused optimizer's in-place update does not move
    the version counter the packed copy is keyed by)."""
    if _broken or type(layer) is not nn.Linear:
        return False  # e.g. dynamic int8's quantized Linear keeps its own product
    w = layer.weight
    return (
        x.device.type == "cpu"
        and x.dtype == w.dtype == torch.float32
        and x.dim() == 2
        and not w.requires_grad
        and not (torch.is_grad_enabled() and x.requires_grad)
        and not torch.is_autocast_enabled("cpu")
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled  # a user's torch.backends.mkldnn.flags(enabled=False) holds
    )


def _weight(layer: nn.Linear) -> Tensor:
    """The layer's weight packed for oneDNN, made once per weight version."""
    w = layer.weight
    key = (w.data_ptr(), w._version, tuple(w.shape))
    cached = _packed.get(layer)
    if cached is None or cached[0] != key:
        cached = (key, torch.ops.mkldnn._reorder_linear_weight(w.detach(), PACK_ROWS))
        _packed[layer] = cached
    return cached[1]


def linear(layer: nn.Module, x: Tensor) -> Tensor:
    """x (R, E) -> (R, V): layer(x), through our compiled kernel's panels where it serves
    (models/cpu_linear.py), else oneDNN's packed weight where `applies`, else the layer's own product."""
    if cpu_linear.applies(x):
        panels = cpu_linear.panel_set(layer, {"output": (layer,)})
        if panels is not None:
            return cpu_linear.linear(x, panels["output"])
    if not applies(layer, x):
        return linear_reference(layer, x)
    try:
        return torch.ops.mkldnn._linear_pointwise(x, _weight(layer), layer.bias, "none", [], "")
    except (RuntimeError, AttributeError) as e:  # a torch build without these ops: F.linear from now on
        _broken.append(str(e).splitlines()[0] if str(e) else type(e).__name__)
        log.warning("packed output projection unavailable (%s): decoding uses F.linear", _broken[0])
        return linear_reference(layer, x)
