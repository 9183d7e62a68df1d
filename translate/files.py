"""Atomic writes, below every layer: a file is either its old self or complete, never half written.

write_atomic writes a temp file beside the target, flushes and fsyncs it, puts it in place with os.replace,
then fsyncs the directory (where the platform allows) so the rename survives a power cut too. Every file
the project writes (checkpoints, tokenizer models, reports, hypotheses, benchmark tables, the corpus) goes
through it; link_atomic gives one file a second name the same way.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def _temp_name(path: Path, suffix: str) -> Path:
    """A fresh name beside `path` (hidden, random; creating it with O_EXCL / os.link fails if it is taken)."""
    return path.with_name(f".{path.name}.{os.urandom(6).hex()}{suffix}")


def fsync_dir(directory: str | Path) -> None:
    """Make renames in `directory` durable; a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _put_in_place(path: Path, suffix: str, fill: Callable[[Path], None]) -> Path:
    """fill(tmp) makes a complete, fsynced file at a fresh name beside `path`, which then replaces `path`
    (os.replace) and the directory is fsynced. On any exception the temp file goes and `path` is untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path, suffix)
    try:
        fill(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def write_atomic(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """write(f) fills a binary file beside `path`, which is flushed, fsynced and renamed over `path`.

    On any exception the temp file is removed and `path` keeps its old content (or stays absent).
    """

    def fill(tmp: Path) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        fd = os.open(tmp, flags, 0o666)  # permissions as open() gives them (umask)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())

    return _put_in_place(Path(path), ".tmp", fill)


def write_bytes(path: str | Path, data: bytes) -> Path:
    return write_atomic(path, lambda f: f.write(data))


def write_text(path: str | Path, text: str) -> Path:
    """UTF-8, newlines as given (no platform translation)."""
    return write_bytes(path, text.encode("utf-8"))


def write_lines(path: str | Path, lines: list[str]) -> Path:
    return write_text(path, "".join(line + "\n" for line in lines))


def write_json(path: str | Path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def save_figure(fig, path: str | Path, dpi: int = 150) -> Path:
    """matplotlib figure -> PNG, atomically."""
    return write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight"))


def link_atomic(src: str | Path, dst: str | Path) -> Path:
    """Give the complete file `src` a second name `dst`, replacing what `dst` was in one step.

    A hard link where the file system has them (no bytes copied), else a copy (fsynced); either way the new
    name is made beside `dst` and renamed over it, so `dst` is always a complete file.
    """

    def fill(tmp: Path) -> None:
        try:
            os.link(src, tmp)
        except OSError:
            with open(src, "rb") as fin, open(tmp, "xb") as fout:
                shutil.copyfileobj(fin, fout)
                fout.flush()
                os.fsync(fout.fileno())

    return _put_in_place(Path(dst), ".link", fill)


def write_dir_atomic(out_dir: str | Path, write: Callable[[Path], None]) -> Path:
    """write(tmp) fills a temporary directory beside out_dir, which then takes out_dir's place."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    old = None
    try:
        write(tmp)
        if out_dir.exists():  # --force: move the old one aside first, delete it once the new one is in place
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=out_dir.parent))
            os.replace(out_dir, old / "x")
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and (old / "x").exists() and not out_dir.exists():
            os.replace(old / "x", out_dir)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    fsync_dir(out_dir.parent)
    return out_dir
