"""Dropout with a mask about three times cheaper than torch's on the CPU: 32 random bits per element.

Why: torch's CPU dropout draws each element's Bernoulli from a double (two 32-bit mt19937 outputs and a
conversion), one element at a time on one thread. On the 2-core AMD EPYC (Zen 2, AVX2 only) its `bernoulli_`
takes 6.2 ms for one (75, 40, 256) activation of the default batch, and the default Transformer runs 17 of
them per step: 4.6% of a one-thread fp32 step in `bench_train.py --profile`, more on two threads, where the
matmuls halve and the draws do not. Here one full-range int64 `random_` gives the bits of two
elements, read as int32 and compared with a threshold straight into the float mask (torch's bool-to-float
products are slower than the compare). The step: training/README.md, "Utilisation". Under torch.compile the
int64 draw breaks the graph around each dropout, and that measured faster than inductor's own dropout.

Numbers: out = x * keep / (1 - p), as F.dropout; only the mask's random stream differs (both come from
torch's generator, so seeding and exact resume hold). The drop probability is p rounded to a multiple of
2^-32 (an error under 1.2e-10). `dropout_reference` is F.dropout; the tests compare values and gradients
through the same mask, and the drop rate.

Legend: N elements of the input, any shape.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def scaled_keep_mask(shape: torch.Size, p: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """A mask of `shape` in `dtype`: 1 / (1 - p) (keep) with probability 1 - p, else 0, from 32 random bits
    per element: F.dropout's scaled noise."""
    n = math.prod(shape)
    draws = torch.empty((n + 1) // 2, dtype=torch.int64, device=device)
    draws.random_(-(2**63), None)  # the full int64 range: 64 random bits each
    words = draws.view(torch.int32)[:n]  # (N,) uniform over the int32 range
    threshold = round(p * 2**32) - 2**31  # P(word < threshold) = round(p * 2^32) / 2^32
    mask = torch.ge(words, threshold, out=torch.empty(n, dtype=dtype, device=device))  # (N,) 1 keep, 0 drop
    return mask.mul_(1.0 / (1.0 - p)).view(shape)


class _Dropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, p: float) -> Tensor:
        mask = scaled_keep_mask(x.shape, p, x.dtype, x.device)  # x's shape and dtype
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad: Tensor):
        (mask,) = ctx.saved_tensors
        return grad * mask, None


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """F.dropout(x, p, training) with the cheaper mask; p = 1 (all dropped) goes to F.dropout."""
    if not training or p == 0.0:
        return x
    if not 0.0 <= p < 1.0 or x.device.type != "cpu":
        return F.dropout(x, p, training)  # p = 1: zeros; p outside [0, 1]: its error; CUDA's kernel is fused
    return _Dropout.apply(x, p)


def dropout_reference(x: Tensor, p: float, training: bool = True) -> Tensor:
    """torch's own dropout: what `dropout` is tested against."""
    return F.dropout(x, p, training)


class Dropout(nn.Dropout):
    """nn.Dropout with `dropout`'s mask (same `p`, no parameters: checkpoints are unchanged)."""

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)
