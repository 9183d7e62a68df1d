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
