"""Training precision: `trainer.precision=auto` picks bf16 only where the hardware really runs it.

bf16 autocast trains about 1.5x faster than fp32 on a CPU with AVX-512 BF16 or AMX, but on a CPU without them
PyTorch falls back to a slow path (bf16 matmul 4-8x slower than fp32, measured on an AVX2-only CPU). So:
  1. ask PyTorch what the device can do (`probe_bf16`): native, not native, or unsure;
  2. on a CPU, confirm with a micro-benchmark of the model's own matmul shapes in both dtypes (well under a
     second), and let it decide when the probe is unsure;
  3. log the decision once with its reason; an explicit bf16 without native support runs with a warning.
fp16 is never chosen automatically (on CUDA it needs a GradScaler; on a CPU it is slower still).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from translate.machine import usable_cores
from translate.training.errors import TrainingError

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
BF16_MIN_SPEEDUP = 1.0  # on a CPU, auto picks bf16 only when its matmuls are at least this much faster


@dataclass(frozen=True)
class Probe:
    """What PyTorch says about native bf16 on a device: True, False or None (cannot tell), and why."""

    native: bool | None
    detail: str


def probe_bf16(device: torch.device) -> Probe:
    """Native bf16? CUDA: torch.cuda.is_bf16_supported(). CPU: AVX-512 BF16 or AMX, usable by oneDNN."""
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        name = torch.cuda.get_device_name(device)
        return Probe(ok, f"cuda {name}: bf16 {'supported' if ok else 'unsupported'}")
    if device.type != "cpu":
        return Probe(None, f"{device.type}: no bf16 probe")
    try:
        avx512_bf16 = bool(torch.cpu._is_avx512_bf16_supported())
        amx = bool(torch.cpu._is_amx_tile_supported())
        onednn = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        isa = torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError) as e:  # an older or unusual build: let the benchmark decide
        return Probe(None, f"cpu: PyTorch cannot tell ({e.__class__.__name__})")
    flags = "+".join(n for n, on in (("avx512_bf16", avx512_bf16), ("amx", amx)) if on)
    flags = flags or "no avx512_bf16/amx"
    if not (avx512_bf16 or amx):
        return Probe(False, f"cpu without native bf16 ({flags}, ATen {isa})")
    if not onednn or isa in ("DEFAULT", "NO AVX", "AVX2"):
        # The CPU has it, but oneDNN/ATen were limited (ONEDNN_MAX_CPU_ISA, ATEN_CPU_CAPABILITY): not used.
        return Probe(False, f"cpu has {flags} but PyTorch runs ATen {isa}, oneDNN bf16 {onednn}")
    return Probe(True, f"cpu with {flags}, ATen {isa}")


def matmul_shapes(model: nn.Module, top: int = 3) -> list[tuple[int, int]]:
    """The (out, in) shapes of the model's largest Linear layers, the ones that dominate a training step."""
    shapes = {tuple(m.weight.shape) for m in model.modules() if isinstance(m, nn.Linear)}
    return sorted(shapes, key=lambda s: -s[0] * s[1])[:top] or [(1024, 256)]


def bf16_speedup(
    shapes: list[tuple[int, int]],
    rows: int = 256,
    repeats: int = 2,
    budget_s: float = 0.3,
    mm: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = torch.matmul,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """fp32 time / bf16 time of the matmuls of `shapes` on the CPU: > 1 means bf16 is faster.

    For each Linear (out, in): the forward x @ W.T and the two backward products, `rows` rows, best of
    `repeats` after a warm-up, on the threads training will use. A bf16 warm-up call 10x slower than fp32 is
    either oneDNN generating a kernel (a first call only) or the slow fallback path, so one more call tells
    them apart: still 10x slower, that call is its time; once the bf16 side has spent `budget_s` the ratio is
    taken over the products done so far. About 0.1 s with native bf16, well under a second without (where the
    fallback can run at 1 GFLOP/s). mm and clock are the product and the timer (a test scripts them).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        products = []
        for o, i in shapes:
            x, w, g = torch.randn(rows, i), torch.randn(o, i), torch.randn(rows, o)
            products += [(x, w.t()), (g, w), (g.t(), x)]  # forward, grad input, grad weight
    products.sort(key=lambda p: p[0].shape[0] * p[0].shape[1] * p[1].shape[1])  # cheapest first: see budget_s

    def once(a: torch.Tensor, b: torch.Tensor) -> float:
        start = clock()
        mm(a, b)
        return clock() - start

    def best(a: torch.Tensor, b: torch.Tensor, first: float | None = None) -> float:
        return min(([] if first is None else [first]) + [once(a, b) for _ in range(repeats)])

    fp32_done = bf16_done = spent = 0.0
    for a, b in products:
        mm(a, b)  # warm-up
        t32 = best(a, b)
        a16, b16 = a.bfloat16(), b.bfloat16()
        first = once(a16, b16)  # warm-up: a new kernel's generation, or already the fallback's measurement
        if first > 10 * t32:
            second = once(a16, b16)
            spent += first
            first = second
        t16 = first if first > 10 * t32 else best(a16, b16, first)
        fp32_done, bf16_done, spent = fp32_done + t32, bf16_done + t16, spent + first + t16 * repeats
        if spent > budget_s:
            break
    return fp32_done / bf16_done


def resolve_precision(
    requested: str,
    device: torch.device,
    model: nn.Module,
    probe: Callable[[torch.device], Probe] | None = None,
    speedup: Callable[[list[tuple[int, int]]], float] | None = None,
) -> tuple[str, str]:
    """trainer.precision -> (fp32 | bf16 | fp16, reason). probe/speedup default to probe_bf16/bf16_speedup."""
    probe, speedup = probe or probe_bf16, speedup or bf16_speedup
    if requested not in PRECISIONS:
        raise TrainingError(f"trainer.precision={requested}: choose {' | '.join(PRECISIONS)}")
    if requested == "fp16" and device.type != "cuda":
        raise TrainingError("trainer.precision=fp16 needs CUDA (GradScaler): use auto or bf16")
    if requested == "fp32" or requested == "fp16":
        return requested, "requested"
    p = probe(device)
    if device.type != "cpu":
        if requested == "bf16":
            if p.native is False:
                log.warning("trainer.precision=bf16 without native bf16 (%s): expect a slow run", p.detail)
            return "bf16", "requested"
        return ("bf16", p.detail) if p.native else ("fp32", p.detail)
    ratio = speedup(matmul_shapes(model))  # fp32 time / bf16 time
    how = f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"
    measured = f"bf16 matmul {how} here"
    if requested == "bf16":
        if not p.native or ratio < BF16_MIN_SPEEDUP:
            log.warning(
                "trainer.precision=bf16 on a %s: %s; trainer.precision=auto would pick fp32",
                p.detail if p.native is False else "cpu", measured,
            )  # fmt: skip
        return "bf16", f"requested; {measured}"
    if p.native is False:
        return "fp32", f"{p.detail}: {measured}"
    if ratio >= BF16_MIN_SPEEDUP:
        return "bf16", f"{p.detail if p.native else 'probe unsure, ' + p.detail}: {measured}"
    return "fp32", f"{p.detail}, but {measured}"


def autocast_for(precision: str, device: torch.device):
    """-> a zero-argument context factory: bf16/fp16 autocast or nothing (fp32). Takes resolved precisions."""
    if precision == "fp32":
        return contextlib.nullcontext
    if precision not in ("bf16", "fp16"):
        raise TrainingError(f"trainer.precision={precision}: resolve it first (fp32, bf16 or fp16)")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return lambda: torch.autocast(device.type, dtype=dtype)


def cpu_threads_note() -> str:
    """How many threads torch uses, of how many cores, and where that came from (logged at start)."""
    cores = usable_cores()
    omp = os.environ.get("OMP_NUM_THREADS")
    source = f"OMP_NUM_THREADS={omp}" if omp else "torch's default: one per core"
    return f"{torch.get_num_threads()} torch threads on {cores} usable cores ({source})"
