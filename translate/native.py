"""Our C kernels (translate/**/*.c): compiled on first use for the host's own CPU, cached, loaded with ctypes.

Why: a few hot loops of CPU decoding (few-query attention, small-row products) ran up to 3.6x and 5.7x as
fast as plain C built for the host's instruction set as through PyTorch's general kernels, and a C file
needs neither a build step at install time nor PyTorch's headers. Each source is compiled with the host's
compiler (`cc -O3 -march=native -fopenmp`, or $CC) into a per-user cache (TRANSLATE_KERNEL_CACHE, else
translate/kernels under $XDG_CACHE_HOME or the home directory's .cache; not the project's data cache),
keyed by the source, the compiler, its flags and the CPU's flags, written atomically (temp file + rename),
and loaded with ctypes (which releases the GIL during a call). Threads come from the OpenMP runtime PyTorch
already loaded (libgomp.so.1). Each kernel's module checks its library once against its reference and falls
back to PyTorch with the reason logged where anything fails (no compiler, no OpenMP, a read-only cache, a
failed check) or TRANSLATE_CPU_KERNEL=0 is set.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from translate.machine import cpu_flags

FLAGS = ("-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-shared", "-fPIC")
# Tried in order: with glibc's vector expf, then without it (musl, older glibc, other architectures).
VARIANTS = (("-lmvec", "-lm"), ("-DTRANSLATE_NO_MVEC", "-lm"))


def cache_dir() -> Path:
    if os.environ.get("TRANSLATE_KERNEL_CACHE"):
        return Path(os.environ["TRANSLATE_KERNEL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "translate" / "kernels"


def switched_off() -> str | None:
    """The reason no compiled kernel serves this process (TRANSLATE_CPU_KERNEL=0), or None."""
    off = os.environ.get("TRANSLATE_CPU_KERNEL", "1") == "0"
    return "switched off (TRANSLATE_CPU_KERNEL=0)" if off else None


def _compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


@functools.cache
def _version(compiler: str) -> str:
    """`compiler --version` (part of a kernel's cache key), asked once per process for all kernels."""
    try:
        return subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _compile(source: Path, so: Path) -> str | None:
    """Build `source` into `so` -> None, or the reason it could not."""
    compiler = _compiler()
    if compiler is None:
        return "no C compiler (cc, gcc or $CC) on PATH"
    so.parent.mkdir(parents=True, exist_ok=True)
    reason = "unknown"
    for extra in VARIANTS:
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=so.parent)
        os.close(fd)
        cmd = [compiler, *FLAGS, str(source), "-o", tmp, *extra]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            os.unlink(tmp)
            return f"{compiler} failed to run: {e}"
        if done.returncode == 0:
            os.replace(tmp, so)  # atomic: another process sees no .so or a whole one
            return None
        os.unlink(tmp)
        first = (done.stderr.strip().splitlines() or ["?"])[0][:200]
        reason = f"{compiler} {' '.join(FLAGS[:3])} failed: {first}"
    return reason


def load(source: Path) -> tuple[ctypes.CDLL | None, str | None]:
    """Build `source` (once per source, compiler and CPU) and load it -> (library, None) or (None, reason)."""
    reason = switched_off()
    if reason is not None:
        return None, reason
    compiler = _compiler() or ""
    key = hashlib.sha256(
        "\0".join([source.read_text(), compiler, _version(compiler), " ".join(FLAGS), repr(VARIANTS),
                   " ".join(sorted(cpu_flags())), platform.machine()]).encode()  # fmt: skip
    ).hexdigest()[:16]
    so = cache_dir() / f"{source.stem}-{key}.so"
    try:
        reason = None if so.exists() else _compile(source, so)
        return (None, reason) if reason is not None else (ctypes.CDLL(str(so)), None)
    except OSError as e:
        return None, f"{so}: {e}"


def checked(source: Path, bind: Callable[[ctypes.CDLL], None], self_test: Callable[[ctypes.CDLL], str | None],
            log: logging.Logger, use: str, fallback: str) -> tuple[ctypes.CDLL | None, str]:  # fmt: skip
    """load(source), then bind its argument types and run its self-test -> (library or None, what happened),
    logged once on the kernel module's logger: "<use>: the compiled CPU kernel <path>" or "<use>: <fallback>
    (the compiled CPU kernel is unavailable: <reason>)". Callers cache it per process (functools.cache)."""
    lib, reason = load(source)
    if lib is not None:
        bind(lib)
        reason = self_test(lib)
    if reason is not None:
        log.info("%s: %s (the compiled CPU kernel is unavailable: %s)", use, fallback, reason)
        return None, reason
    log.info("%s: the compiled CPU kernel %s", use, lib._name)
    return lib, f"compiled ({lib._name})"
