"""How far training is from the machine's own peak: the model's FLOPs per target token, which the model counts
itself (Seq2Seq.flops_per_target_token, the Transformer's formula in translate/models/transformer.py), against
the matmul speed measured here at the model's own shapes (Seq2Seq.linear_shapes).

The peak is the step's own mix: every Linear product of a step (forward, gradient of the input, gradient of
the weight) at `rows` tokens, each timed here in the training precision on the threads training uses, and
the mix's FLOPs divided by its time. `share = achieved FLOP/s / peak`. A model that declares no count (its
flops_per_target_token() is None: the RNNs, whose step is not matmul-bound in the same way) gets no
utilisation figure, and training logs why (training/setup.py's utilisation_basis).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Peak:
    """The measured matmul speed of a step's Linear products: the mix, and each product on its own."""

    precision: str
    rows: int
    gflops: float  # the mix: total FLOPs / total time, weighted as one step runs them
    products: tuple[tuple[str, float], ...]  # ("3000x256x1024", GFLOP/s), m x k x n

    def describe(self) -> str:
        fastest = max(g for _, g in self.products)
        n = len(self.products)
        return (f"{self.gflops:.3g} GFLOP/s ({self.precision}, the step's {n} Linear products at {self.rows} "
                f"rows; the fastest alone {fastest:.3g})")  # fmt: skip


def matmul_peak(shapes: Mapping[tuple[int, int], int], precision: str, rows: int = 3000, repeats: int = 3,
                device: str | torch.device = "cpu", min_s: float = 0.02) -> Peak:  # fmt: skip
    """Time (rows, in) @ (in, out), (rows, out) @ (out, in) and (out, rows) @ (rows, in) for each shape in
    `precision`: the best of at least `repeats` calls (and of as many as fit in `min_s`) after a warm-up, so a
    call slowed by another process does not count. The mix weights each product by its count in `shapes`."""
    dtype = DTYPES[precision]
    device = torch.device(device)
    total_flops = total_time = 0.0
    products: list[tuple[str, float]] = []
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)
        for (o, i), count in shapes.items():
            x = torch.randn(rows, i, device=device, dtype=dtype)
            w = torch.randn(o, i, device=device, dtype=dtype)
            g = torch.randn(rows, o, device=device, dtype=dtype)
            for a, b in ((x, w.t()), (g, w), (g.t(), x)):  # forward, grad input, grad weight
                flops = 2.0 * a.shape[0] * a.shape[1] * b.shape[1]
                seconds = _best_time(a, b, repeats, min_s)
                products.append((f"{a.shape[0]}x{a.shape[1]}x{b.shape[1]}", flops / seconds / 1e9))
                total_flops += count * flops
                total_time += count * seconds
    return Peak(precision, rows, total_flops / total_time / 1e9, tuple(products))


def _best_time(a: torch.Tensor, b: torch.Tensor, repeats: int, min_s: float) -> float:
    cuda = a.device.type == "cuda"
    a @ b  # warm-up
    best, spent, n = float("inf"), 0.0, 0
    while n < repeats or spent < min_s:
        n += 1
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if cuda:
            torch.cuda.synchronize()
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
    return best


def share_note(tokens_per_s: float, flops_per_token: float, peak: Peak) -> str:
    """e.g. '3,849 target tok/s x 46.4 MFLOP = 179 GFLOP/s, 42% of the measured matmul peak 425 GFLOP/s'."""
    achieved = tokens_per_s * flops_per_token / 1e9
    return (
        f"{tokens_per_s:,.0f} target tok/s x {flops_per_token / 1e6:.3g} MFLOP = {achieved:.3g} GFLOP/s, "
        f"{achieved / peak.gflops:.0%} of the measured matmul peak {peak.describe()}"
        + ("; over 100%: the peak was timed while the machine was busy" if achieved > peak.gflops else "")
    )
