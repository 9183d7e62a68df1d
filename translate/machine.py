"""What CPU this is, read once from /proc/cpuinfo: for the per-machine caches and every benchmark's header.

At the bottom of the chain beside files.py: training keys its backend verdicts on it, the benchmarks name
the CPU their figures come from.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

KEY_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


@functools.cache
def _cpuinfo() -> dict[str, str]:
    """The first processor's fields ("model name", "flags", ...); {} where /proc/cpuinfo is missing."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the first processor is enough
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def cpu_name() -> str:
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    return set(_cpuinfo().get("flags", "").split())


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def describe_cpu() -> str:
    """e.g. "Intel(R) Xeon(R) Processor (2 cores; avx2 fma avx512f avx512_vnni avx512_bf16)"."""
    shown = [f for f in KEY_FLAGS if f in cpu_flags()]
    return f"{cpu_name()} ({usable_cores()} cores; {' '.join(shown) or 'no AVX2'})"


# The variables that limit the instruction set PyTorch uses, set by hand to approximate an older CPU
# (e.g. ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 on an AVX-512 machine): benchmarks record them.
ISA_LIMITS = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")


def peak_rss_mib(pid: int | str = "self") -> float:
    """A process's peak resident set in MiB (Linux VmHWM: it starts afresh at exec, unlike ru_maxrss, so a
    parent's memory is not counted); NaN where /proc does not say."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return float("nan")
    line = next((x for x in lines if x.startswith("VmHWM:")), None)
    return int(line.split()[1]) / 1024 if line else float("nan")
