"""The memory allocator every computing entry point runs under: mimalloc with its purge delay off.

glibc's malloc gives every block over its mmap threshold (at most 32 MB) back to the kernel when it is freed,
so each training step faults in and zeroes the same pages again (a quarter of the speed of the default
`make train`, measured: translate/training/README.md#the-memory-allocator). mimalloc with
MIMALLOC_PURGE_DELAY=-1 keeps freed pages for reuse. It comes from PyPI (`cmeel-mimalloc`, a core dependency
on Linux x86_64 / aarch64), so it needs no root and no apt.

An allocator can only replace malloc if it is loaded before anything else, so an entry point calls
`preload()` as its first statement, before torch is imported: the process re-executes itself once
(os.execv: same PID, same arguments) with LD_PRELOAD naming the library. Then:
  - TRANSLATE_ALLOCATOR=system (or any process where mimalloc is missing or did not load) runs on glibc's
    malloc, the last with a one-line warning on stderr;
  - it never loops: the re-executed process carries _TRANSLATE_ALLOCATOR_EXEC and checks /proc/self/maps;
  - the library is taken out of LD_PRELOAD again once loaded, so the programs this process starts (a
    compiler, a browser) get the environment the user gave; a child that is itself an entry point (torchrun
    workers, compare.py's training runs) preloads for itself;
  - importing an entry point's module (the tests do) never re-executes: only `__main__` calls preload.
`describe()` is the line training, evaluation and the benchmarks log once (`allocator: mimalloc (purge delay
off)`). Nothing here imports torch: it runs before torch is loaded. The CUDA caching allocator is not
involved (device memory is not malloc's).
"""

from __future__ import annotations

import os
import sys
from importlib import metadata
from pathlib import Path

ENV = "TRANSLATE_ALLOCATOR"
CHOICES = ("mimalloc", "system")  # the default first
PACKAGE = "cmeel-mimalloc"
LIBRARY = "cmeel.prefix/lib/libmimalloc.so"  # inside the package's install prefix
EXEC_MARK = "_TRANSLATE_ALLOCATOR_EXEC"  # set by the one re-exec: the library we asked ld.so to preload
PURGE_ENV = "MIMALLOC_PURGE_DELAY"  # -1: freed pages are never given back to the OS (kept for reuse)

_note = ""  # why this process runs on the system allocator, when preload() found out


class AllocatorError(ValueError):
    """TRANSLATE_ALLOCATOR set to something unknown; the message is one line."""


def requested() -> str:
    """TRANSLATE_ALLOCATOR, checked: mimalloc (default) or system."""
    value = os.environ.get(ENV, "").strip().lower() or CHOICES[0]
    if value not in CHOICES:
        raise AllocatorError(f"{ENV}={os.environ[ENV]!r}: expected one of {', '.join(CHOICES)}")
    return value


def library_path() -> Path | None:
    """libmimalloc.so from the installed cmeel-mimalloc package, or None where it is not installed."""
    try:
        path = Path(str(metadata.distribution(PACKAGE).locate_file(LIBRARY)))
    except metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def loaded() -> bool:
    """Is mimalloc mapped into this process (preloaded, or linked in)?"""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return False
    return "libmimalloc" in maps


def describe() -> str:
    """What this process allocates with, for the one log line: 'mimalloc (purge delay off)' or
    'system (glibc malloc; TRANSLATE_ALLOCATOR=system)'."""
    if loaded():
        delay = os.environ.get(PURGE_ENV, "").strip()
        return "mimalloc (purge delay off)" if delay == "-1" else f"mimalloc (purge delay {delay or '10'} ms)"
    why = _note
    if not why:
        try:
            why = f"{ENV}=system" if requested() == "system" else "preload() was not called"
        except AllocatorError as e:
            why = str(e)
    return f"system (glibc malloc; {why})"


def _warn(message: str) -> None:
    global _note
    _note = message
    print(f"warning: allocator: {message}; running on the system allocator", file=sys.stderr, flush=True)


def _without(preload: str, library: str) -> str:
    return ":".join(p for p in preload.replace(" ", ":").split(":") if p and p != library)


def preload() -> None:
    """Run this process under mimalloc unless TRANSLATE_ALLOCATOR=system: re-execute it once with LD_PRELOAD,
    or, where that cannot work, warn in one line and go on with glibc. Call it from `__main__` only, first.

    A bad TRANSLATE_ALLOCATOR is one line on stderr and exit status 2."""
    global _note
    try:
        choice = requested()
    except AllocatorError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    tried = os.environ.pop(EXEC_MARK, None)
    if tried:  # the re-executed process: give the children the user's LD_PRELOAD back
        rest = _without(os.environ.get("LD_PRELOAD", ""), tried)
        if rest:
            os.environ["LD_PRELOAD"] = rest
        else:
            os.environ.pop("LD_PRELOAD", None)
    if choice == "system" or loaded():
        return
    if tried:
        return _warn(f"{tried} did not load (see the ld.so message above)")
    if not sys.platform.startswith("linux"):
        _note = f"preloading mimalloc is implemented for Linux only, not {sys.platform}"
        return
    library = library_path()
    if library is None:
        return _warn(f"mimalloc not found (pip install {PACKAGE}, or {ENV}=system to silence this)")
    env = dict(os.environ, LD_PRELOAD=":".join(filter(None, [str(library), os.environ.get("LD_PRELOAD")])))
    env[EXEC_MARK] = str(library)
    env.setdefault(PURGE_ENV, "-1")
    argv = [sys.executable, *sys.orig_argv[1:]]  # the same interpreter flags, -m module or script, arguments
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, argv, env)
    except OSError as e:  # nothing has changed in this process: go on as it is
        _warn(f"cannot re-execute {sys.executable} under {library.name} ({e.strerror or e})")
