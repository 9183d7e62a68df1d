"""Inference products on a CPU through our compiled kernel (cpu_linear.c), the weight packed once in panels.

Why: at a decoding step's rows MKL's sgemm, what F.linear calls on an x86 CPU, gains nothing from a second
thread up to 4 rows and repacks its weight at every call. On the 2-core AMD EPYC (Zen 2) the kernel's plain
register tiles over a packed weight ran the default model's products 0.9-2.7x as fast as F.linear on one
thread and 1.1-5.7x on two, 1.35-1.8x at 100 rows (translate/models/README.md, "Small products on a CPU").

`panel_set(owner, {name: linears})` packs each group's weights (stacked by output features, e.g. q, k and v
into one product) once per weight version (another tensor, or an in-place update: the tensor's version
counter) and keeps them per owner module; `linear(x, packed, relu)` runs the product. The sums run in
another order than MKL's, so results match F.linear to float rounding (about 1e-7 relative), not bitwise.
The library is built and loaded by translate/native.py and checked once against `linear_reference`; where
that fails, or TRANSLATE_CPU_KERNEL=0 is set, `panel_set` returns None and callers keep F.linear.

Legend: R rows, K in features, N out features, P panels, W panel width (columns).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import weakref
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from translate import native

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("cpu_linear.c")
_I64, _PTR, _INT = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
_ARGTYPES = [_PTR, _I64, _PTR, _PTR, _PTR, _I64, _I64, _I64, _I64, _INT, _INT]


class Panels(NamedTuple):
    weight: Tensor  # (P, K, W) zero-padded columns
    bias: Tensor | None  # (P * W,)
    out_features: int
    in_features: int


def linear_reference(x: Tensor, weight: Tensor, bias: Tensor | None, relu: bool = False) -> Tensor:
    """x (R,K), weight (N,K) -> (R,N): F.linear, then ReLU if asked."""
    y = F.linear(x, weight, bias)
    return F.relu(y) if relu else y


def pack(weight: Tensor, bias: Tensor | None, width: int) -> Panels:
    """weight (N,K), bias (N,) -> Panels of `width` columns."""
    n, k = weight.shape
    p = -(-n // width)
    padded = weight.new_zeros(p * width, k)
    padded[:n] = weight
    panels = padded.view(p, width, k).transpose(1, 2).contiguous()  # (P,K,W)
    packed_bias = None
    if bias is not None:
        packed_bias = bias.new_zeros(p * width)
        packed_bias[:n] = bias
    return Panels(panels, packed_bias, n, k)


def _call(lib, x: Tensor, packed: Panels, relu: bool) -> Tensor:
    rows = x.shape[0]
    y = torch.empty(rows, packed.out_features)  # (R,N)
    if rows == 0:
        return y
    bias = None if packed.bias is None else packed.bias.data_ptr()
    lib.translate_linear(x.data_ptr(), x.stride(0), packed.weight.data_ptr(), bias, y.data_ptr(),
                         y.stride(0), rows, packed.in_features, packed.out_features, int(relu),
                         torch.get_num_threads())  # fmt: skip
    return y


def _self_test(lib) -> str | None:
    """The kernel against linear_reference: tail panel, tail tile, several chunks, bias or none, ReLU."""
    g = torch.Generator().manual_seed(0)
    width = lib.translate_linear_width()
    for rows, bias, relu in ((1, True, False), (7, False, True), (101, True, True)):
        w, x = torch.randn(width + 3, 19, generator=g), torch.randn(rows, 19, generator=g)
        b = torch.randn(width + 3, generator=g) if bias else None
        got = _call(lib, x, pack(w, b, width), relu)
        want = linear_reference(x, w, b, relu)
        if not torch.allclose(got, want, rtol=1e-4, atol=1e-5):
            return f"self-test: {(got - want).abs().max().item():.2e} from F.linear"
    return None


def _bind(lib) -> None:
    lib.translate_linear.argtypes, lib.translate_linear.restype = _ARGTYPES, None
    lib.translate_linear_width.argtypes, lib.translate_linear_width.restype = [], _INT


@functools.cache
def _library() -> tuple[ctypes.CDLL | None, str]:
    """(the loaded kernel or None, what happened): built and checked once per process; logged once."""
    return native.checked(SOURCE, _bind, _self_test, log, "CPU inference products", "F.linear")


def status() -> str:
    """What serves CPU inference products in this process, for logs and benchmark headers."""
    return _library()[1]


def applies(x: Tensor) -> bool:
    """Whether `linear` can take x: (R,K) float32 on a CPU, rows contiguous, autograd off (the kernel has no
    backward), no autocast."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.dim() == 2
        and x.stride(-1) == 1
        and not torch.is_grad_enabled()
        and not torch.is_autocast_enabled("cpu")
    )


# Per owner module: (the packed weights' key, views holding their storage, {name: Panels}).
_cache: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, list[Tensor], dict[str, Panels]]] = (
    weakref.WeakKeyDictionary()
)


def panel_set(owner: nn.Module, parts: dict[str, tuple[nn.Module, ...]]) -> dict[str, Panels] | None:
    """{name: Panels} for each group of linears in `parts`, their weights stacked by output features (e.g.
    q, k and v into one product) and packed, made once per weight version and kept on `owner`; None without
    the kernel, off a CPU, for other dtypes, for layers that are not a plain nn.Linear (dynamic int8's
    quantized Linear: its own product) and for weights that require grad.

    Only frozen weights are packed (requires_grad False: an inference model, as load_model returns): a fused
    optimizer (AdamW(fused=True), the training default) updates weights in place without moving their
    version counter, so a copy of a training model's weights, made at one validation, would be stale at the
    next.

    A hit costs one (address, version counter) pair per tensor: a new tensor, a `.data` swap and an in-place
    update (an optimizer step, load_state_dict) all repack. The entry keeps views of the packed tensors, so
    their memory cannot be reused by another tensor at the same address while the entry stands.
    """
    lib = _library()[0]
    linears = [linear for group in parts.values() for linear in group]
    if lib is None or any(type(linear) is not nn.Linear for linear in linears):
        return None
    # the modules' own tables: nn.Module.__getattr__ costs about 1 us a lookup (torch 2.13), this is per step
    tables = [linear._parameters for linear in linears]
    tensors = [t for table in tables for t in (table["weight"], table["bias"]) if t is not None]
    if any([t.requires_grad for t in tensors]):  # checked before the hit: frozen weights may be thawed
        return None
    key = tuple([(t.data_ptr(), t._version) for t in tensors])
    kept = _cache.get(owner)
    if kept is not None and kept[0] == key:
        return kept[2]
    if any(t.device.type != "cpu" or t.dtype != torch.float32 for t in tensors):
        return None
    out = {}
    for name, group in parts.items():
        if len({lin.bias is None for lin in group}) != 1 or len({lin.in_features for lin in group}) != 1:
            return None
        weight = torch.cat([linear.weight.detach() for linear in group])  # (N,K)
        bias = None if group[0].bias is None else torch.cat([linear.bias.detach() for linear in group])
        out[name] = pack(weight, bias, lib.translate_linear_width())
    _cache[owner] = (key, [t.detach() for t in tensors], out)
    return out


def linear(x: Tensor, packed: Panels, relu: bool = False) -> Tensor:
    """x (R,K) -> (R,N): x W^T + b through the kernel (call where `applies` and `panel_set` gave `packed`)."""
    return _call(_library()[0], x, packed, relu)
