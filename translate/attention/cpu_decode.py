"""Few-query attention on a CPU, for decoding: our compiled kernel (cpu_decode.c) beside PyTorch's SDPA.

Why: a decoding step attends with 1 query per (row, head) (greedy; every self-attention step) or G (a beam's
G queries of one source in cross-attention) over a few dozen cached keys. PyTorch's CPU SDPA kernel pays two
small GEMM calls and its buffers per (row, head) there: on the 2-core AMD EPYC (Zen 2) it took 1.1 ms for
97 rows x 4 heads over 41 keys, where reading the keys and values once takes 0.47 ms and this kernel 0.63 ms
(translate/attention/README.md, "Decoding attention on a CPU").

The C source is built and loaded by translate/native.py (the host's compiler for the host's own
instruction set, a per-user cache) and checked once against `attend_reference` on a small problem. Where that
fails, or TRANSLATE_CPU_KERNEL=0 is set, the reason is logged once and PyTorch's SDPA serves every call.

backend.scaled_dot_product takes this path for the "sdpa" backend when `applies`: a CPU, float32,
inference (autograd not recording), at most MAX_QUERIES queries, no causal mask or window, no dropout.

Legend: B batch, H heads, T queries, S keys, D head dim.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from translate import native

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("cpu_decode.c")
MAX_QUERIES = 16  # decoding's shapes (1 query, or a beam's G); teacher forcing's T queries keep SDPA
_I64, _PTR = ctypes.c_int64, ctypes.c_void_p
_ARGTYPES = [_PTR, _I64, _I64, _I64] * 3 + [_PTR, _I64, _PTR] + [_I64] * 5 + [ctypes.c_float, ctypes.c_int]


def attend_reference(q: Tensor, k: Tensor, v: Tensor, key_padding_mask: Tensor | None = None,
                     scale: float | None = None) -> Tensor:  # fmt: skip
    """q (B,H,T,D), k, v (B,H,S,D), mask (B,S) True = ignore -> (B,H,T,D): PyTorch's SDPA with the mask, a
    query that may see no key zeroed (what backend._sdpa does)."""
    if key_padding_mask is None:
        return F.scaled_dot_product_attention(q, k, v, scale=scale)
    allowed = ~key_padding_mask[:, None, None, :]  # (B,1,1,S)
    empty = ~allowed.any(dim=-1, keepdim=True)  # (B,1,1,1)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed | empty, scale=scale)
    return out.masked_fill(empty, 0.0)


def _self_test(lib) -> str | None:
    """The kernel against attend_reference on a small masked problem, T = 1 and 3 -> None or the reason."""
    g = torch.Generator().manual_seed(0)
    for queries in (1, 3):
        q, k, v = (torch.randn(3, 2, n, 16, generator=g) for n in (queries, 7, 7))
        mask = torch.zeros(3, 7, dtype=torch.bool)
        mask[0, 4:], mask[2] = True, True  # a padded row, and one that sees no key
        got = _call(lib, q, k, v, mask, 0.25)
        want = attend_reference(q, k, v, mask, 0.25)
        if not torch.allclose(got, want, rtol=1e-4, atol=1e-5):
            return f"self-test: {(got - want).abs().max().item():.2e} from PyTorch's SDPA"
    return None


def _bind(lib) -> None:
    lib.translate_attend.argtypes, lib.translate_attend.restype = _ARGTYPES, ctypes.c_int


@functools.cache
def _library() -> tuple[ctypes.CDLL | None, str]:
    """(the loaded kernel or None, what happened): built and checked once per process; logged once."""
    return native.checked(SOURCE, _bind, _self_test, log, "decoding attention", "PyTorch SDPA")


def status() -> str:
    """What serves few-query attention on a CPU in this process, for logs and benchmark headers."""
    return _library()[1]


def applies(q: Tensor, k: Tensor, v: Tensor, key_padding_mask: Tensor | None, causal: bool,
            window: int | None, dropout_p: float) -> bool:  # fmt: skip
    """Whether `attend` serves this call (else PyTorch's SDPA)."""
    return (
        q.device.type == "cpu"
        and q.dtype == k.dtype == v.dtype == torch.float32
        and q.shape[-2] <= MAX_QUERIES
        and not causal
        and window is None
        and dropout_p == 0.0
        and q.dim() == k.dim() == v.dim() == 4
        and q.shape[-1] == k.shape[-1] == v.shape[-1]
        and q.stride(-1) == k.stride(-1) == v.stride(-1) == 1
        and q.shape[0] == k.shape[0] == v.shape[0]
        and q.shape[1] == k.shape[1] == v.shape[1]
        and (key_padding_mask is None or _bool_rows(key_padding_mask))
        and not (torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad))
        and _library()[0] is not None
    )


def _bool_rows(mask: Tensor) -> bool:
    return mask.dtype == torch.bool and mask.dim() == 2 and mask.stride(-1) == 1


def _call(lib, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, scale: float) -> Tensor:
    batch, heads, queries, dim = q.shape
    out = torch.empty(batch, heads, queries, dim)  # (B,H,T,D)
    if out.numel() == 0:
        return out
    keys = k.shape[2]
    pad, pad_stride = (None, 0) if mask is None else (mask.data_ptr(), mask.stride(0))
    failed = lib.translate_attend(
        q.data_ptr(), *q.stride()[:3], k.data_ptr(), *k.stride()[:3], v.data_ptr(), *v.stride()[:3],
        pad, pad_stride, out.data_ptr(), batch, heads, queries, keys, dim, scale, torch.get_num_threads(),
    )  # fmt: skip
    if failed:
        raise MemoryError(f"cpu_decode: no memory for {queries} x {keys} scores")
    return out


def attend(q: Tensor, k: Tensor, v: Tensor, key_padding_mask: Tensor | None = None,
           scale: float | None = None) -> Tensor:  # fmt: skip
    """q (B,H,T,D) over k, v (B,H,S,D) with key_padding_mask (B,S) True = ignore -> (B,H,T,D), through the
    compiled kernel (call only where `applies`)."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    return _call(_library()[0], q, k, v, key_padding_mask, scale)
