"""`attention_backend: auto` when training on a CPU: measure the model's own training step with each backend.

Which backend trains fastest on a CPU depends on the machine and the precision: on an AVX-512 BF16 CPU `math`
was fastest under bf16 autocast but `sdpa` ~10-20% faster in fp32, while on an AVX2-only CPU `math` was ~12%
faster in fp32 (scripts/bench_train.py). No rule holds on both, so training times a few forward+backward
steps of the real model at its real sizes (synthetic ids, half a batch) with each candidate, once per
machine: the verdict is cached in <cache_dir>/attention_backend.json under a key naming the CPU, the torch
build and threads, the precision and the model's shape, and recorded in each checkpoint (`attention_backend`)
for inference on the same machine (translate.attention.backend.apply_verdict). On CUDA `auto` stays per call
(Triton, else SDPA).
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from translate.attention import MultiHeadAttention, set_backend
from translate.attention.backend import machine_id
from translate.files import write_json

log = logging.getLogger(__name__)

CANDIDATES = ("math", "sdpa")  # on a CPU the Triton kernels only run interpreted


def machine_key(precision: str, model: nn.Module, tokens: int) -> str:
    """Everything the verdict depends on: CPU, ISA limits, torch and threads, precision, model shape."""
    shapes = sorted({tuple(p.shape) for p in model.parameters()})
    size = sum(p.numel() for p in model.parameters())
    return (
        f"{machine_id()} x{torch.get_num_threads()} | {precision} | "
        f"{type(model).__name__} {size} params {hash(tuple(shapes)) & 0xFFFFFFFF:08x} | {tokens} tokens"
    )


def step_seconds(model: nn.Module, autocast, tokens: int, length: int = 32, steps: int = 2) -> float:
    """Median time of `steps` forward+backward passes on a (tokens // length, length) synthetic batch.

    Leaves no trace: the RNG is forked (dropout draws), gradients are cleared, the optimizer is not stepped.
    """
    batch = max(tokens // length, 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        src = torch.randint(4, 64, (batch, length))  # (B, S)
        tgt = torch.randint(4, 64, (batch, length + 1))  # (B, T+1)
        device = next(model.parameters()).device
        src, tgt = src.to(device), tgt.to(device)
        times = []
        for i in range(steps + 1):  # the first step warms up
            start = time.perf_counter()
            with autocast():
                logits = model(src, tgt[:, :-1])  # (B, T, V)
            F.cross_entropy(logits.float().flatten(0, 1), tgt[:, 1:].flatten()).backward()
            if i:
                times.append(time.perf_counter() - start)
        model.zero_grad(set_to_none=True)
    return statistics.median(times)


def choose_attention_backend(
    model: nn.Module,
    precision: str,
    autocast,
    device: torch.device,
    tokens: int,
    cache_file: Path | None,
    measure: Callable[[nn.Module, object, int], float] = step_seconds,
) -> tuple[str, str]:
    """-> (backend, reason). Applies the chosen backend to the model's attention modules (CPU only)."""
    if device.type != "cpu":
        return "auto", f"{device.type}: chosen per call"
    if not any(isinstance(m, MultiHeadAttention) for m in model.modules()):
        return "auto", "no dot-product attention to choose for"
    key = machine_key(precision, model, tokens)
    cache = {}
    if cache_file is not None and cache_file.exists():
        try:
            cache = json.loads(cache_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("%s: unreadable backend cache, measuring again", cache_file)
    if key in cache and cache[key].get("backend") in CANDIDATES:
        choice = cache[key]
        reason = f"measured earlier on this machine: {timings(choice['seconds'])} (cache {cache_file})"
    else:
        was_training = model.training
        model.train()
        seconds = {}
        for name in CANDIDATES:
            set_backend(model, name)
            seconds[name] = measure(model, autocast, tokens)
        model.train(was_training)
        choice = {"backend": min(seconds, key=seconds.get), "seconds": seconds}
        reason = f"measured now: {timings(seconds)}"
        if cache_file is not None:
            write_json(cache_file, {**cache, key: choice})
    set_backend(model, choice["backend"])
    return choice["backend"], reason


def timings(seconds: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f} s/step" for k, v in sorted(seconds.items(), key=lambda kv: kv[1]))
