"""trainer.precision=auto: bf16 only where the hardware runs it natively; decision logged and recorded."""

import logging
import math
import os
import subprocess
import sys

import pytest
import torch

from translate.machine import ISA_LIMITS, cpu_flags
from translate.training import precision as precision_module
from translate.training.loop import train
from translate.training.precision import Probe, bf16_speedup, matmul_shapes, probe_bf16, resolve_precision

CPU = torch.device("cpu")
MODEL = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Linear(32, 8))


def fixed(native, ratio):
    """A probe that answers `native` and a benchmark that measures `ratio` (fp32 time / bf16 time)."""
    calls = []
    return (
        (lambda device: Probe(native, "probe says so")),
        (lambda shapes: calls.append(shapes) or ratio),
        calls,
    )


@pytest.mark.parametrize("ratio", [0.2, 3.0])
def test_auto_is_fp32_without_native_bf16_whatever_the_benchmark(ratio):
    probe, speedup, _ = fixed(False, ratio)
    chosen, reason = resolve_precision("auto", CPU, MODEL, probe, speedup)
    assert chosen == "fp32" and "probe says so" in reason


def test_auto_is_bf16_with_native_bf16_confirmed_by_the_benchmark():
    probe, speedup, calls = fixed(True, 1.6)
    chosen, reason = resolve_precision("auto", CPU, MODEL, probe, speedup)
    assert chosen == "bf16" and "1.6x faster" in reason
    assert sorted(calls[0]) == [(8, 32), (32, 8)]  # the model's own Linear shapes


def test_auto_is_fp32_when_native_bf16_measures_slower():
    probe, speedup, _ = fixed(True, 0.5)
    assert resolve_precision("auto", CPU, MODEL, probe, speedup) == (
        "fp32",
        "probe says so, but bf16 matmul 2.0x slower here",
    )


@pytest.mark.parametrize(("ratio", "expected"), [(0.125, "fp32"), (0.99, "fp32"), (1.3, "bf16")])
def test_an_unsure_probe_leaves_the_verdict_to_the_benchmark(ratio, expected):
    probe, speedup, calls = fixed(None, ratio)
    chosen, reason = resolve_precision("auto", CPU, MODEL, probe, speedup)
    assert chosen == expected and len(calls) == 1
    assert ("slower" if ratio < 1 else "faster") in reason


def test_explicit_bf16_without_native_support_runs_with_a_warning(caplog):
    probe, speedup, _ = fixed(False, 1 / 8.5)
    with caplog.at_level(logging.WARNING, logger="translate"):
        chosen, _ = resolve_precision("bf16", CPU, MODEL, probe, speedup)
    assert chosen == "bf16"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "bf16 matmul 8.5x slower here" in warnings[0] and "\n" not in warnings[0]


def test_explicit_choices_are_kept_and_never_benchmarked(caplog):
    probe, speedup, calls = fixed(True, 2.0)
    with caplog.at_level(logging.WARNING, logger="translate"):
        assert resolve_precision("fp32", CPU, MODEL, probe, speedup) == ("fp32", "requested")
        assert resolve_precision("bf16", CPU, MODEL, probe, speedup)[0] == "bf16"
    assert len(calls) == 1 and not caplog.records  # native and faster: no warning


def test_fp16_is_never_chosen_on_a_cpu():
    for native, ratio in [(True, 5.0), (None, 5.0), (False, 0.1)]:
        probe, speedup, _ = fixed(native, ratio)
        assert resolve_precision("auto", CPU, MODEL, probe, speedup)[0] in ("fp32", "bf16")


def test_limiting_the_isa_to_avx2_makes_the_probe_say_not_native():
    """ONEDNN_MAX_CPU_ISA/ATEN_CPU_CAPABILITY=AVX2 approximate an AVX2-only CPU: the probe sees it."""
    code = (
        "import torch; from translate.training.precision import probe_bf16 as p; "
        "print(p(torch.device('cpu')).native)"
    )
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_real_probe_agrees_with_the_cpu_flags():
    """Unlimited ISA, the probe says native exactly when the kernel lists avx512_bf16 or amx_bf16."""
    flags = cpu_flags()
    if not flags or any(os.environ.get(name) for name in ISA_LIMITS):
        pytest.skip("needs /proc/cpuinfo and an unlimited instruction set")
    probe = probe_bf16(CPU)
    assert probe.native is (bool({"avx512_bf16", "amx_bf16"} & flags)), probe.detail


def test_the_benchmark_measures_the_model_shapes():
    shapes = matmul_shapes(MODEL)
    ratio = bf16_speedup(shapes, rows=16, repeats=1)
    assert math.isfinite(ratio) and ratio > 0


class ScriptedMatmul:
    """A clock and a product for bf16_speedup: fp32 products take 1 s; a bf16 product takes `first` s on its
    first call (oneDNN generating its kernel) and `then` s on every later call."""

    def __init__(self, first: float, then: float) -> None:
        self.now, self.first, self.then, self.seen = 0.0, first, then, set()

    def clock(self) -> float:
        return self.now

    def mm(self, a, b):
        if a.dtype == torch.bfloat16:
            key = (tuple(a.shape), tuple(b.shape))
            self.now += self.then if key in self.seen else self.first
            self.seen.add(key)
        else:
            self.now += 1.0
        return a @ b


@pytest.mark.parametrize(
    "first, then, expected",
    [(50.0, 0.5, 2.0), (50.0, 50.0, 1 / 50), (0.5, 0.5, 2.0)],
    ids=["native bf16, slow first call (kernel generation)", "fallback path", "native bf16"],
)
def test_a_slow_first_bf16_call_is_not_taken_for_the_fallback(first, then, expected):
    """The warm-up call of a new bf16 kernel can be 10x an fp32 product without bf16 being slow: the ratio
    comes from the calls after it; only a bf16 product slow on its second call too is the fallback path."""
    script = ScriptedMatmul(first, then)
    ratio = bf16_speedup([(8, 4)], rows=2, repeats=2, budget_s=1e9, mm=script.mm, clock=script.clock)
    assert ratio == pytest.approx(expected)


def test_the_checkpoint_and_config_record_the_resolved_precision(smoke_cfg, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(
        precision_module, "probe_bf16", lambda device: Probe(False, "cpu without native bf16")
    )
    monkeypatch.setattr(precision_module, "bf16_speedup", lambda shapes: 0.25)
    train(smoke_cfg("trainer.precision=auto", "trainer.max_steps=2", "trainer.val_every_steps=0"), tmp_path)
    ckpt = torch.load(tmp_path / "checkpoints/last.pt", weights_only=True)
    assert ckpt["config"]["trainer"]["precision"] == "fp32"
    assert "precision: fp32" in (tmp_path / "config.yaml").read_text()
