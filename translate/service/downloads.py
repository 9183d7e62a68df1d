"""Translated files waiting for GET /download_file/<name>: kept in a private temporary directory for
`ttl` seconds, under names that cannot be guessed (a random 192-bit token, then the uploaded file's name
reduced to [A-Za-z0-9._-]), and served only by that exact name, from an index of the files this server
wrote: no path from a request ever reaches the file system, so nothing else can be read.
"""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path

from translate.files import write_bytes

NAME = re.compile(r"^[A-Za-z0-9_-]{32}\.[A-Za-z0-9._-]{1,120}$")


def safe_name(filename: str) -> str:
    """An uploaded file's name -> its last path part, characters outside [A-Za-z0-9._-] as _."""
    base = re.split(r"[/\\\\]", filename)[-1]
    return re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")[-120:] or "file"


class Downloads:
    def __init__(self, ttl: float):
        self.ttl = ttl
        self.dir = Path(tempfile.mkdtemp(prefix="translate-downloads-"))
        self._files: dict[str, tuple[Path, float, str]] = {}  # name -> (path, expires, download name)
        self._lock = threading.Lock()

    def put(self, filename: str, data: bytes) -> str:
        """-> the name to download it by."""
        self.expire()
        download = safe_name(filename)
        name = f"{secrets.token_urlsafe(24)}.{download}"
        path = write_bytes(self.dir / name, data)
        with self._lock:
            self._files[name] = (path, time.monotonic() + self.ttl, download)
        return name

    def get(self, name: str) -> tuple[Path, str] | None:
        """-> (path, the name to save it as), or None (unknown, expired, or not one of ours)."""
        self.expire()
        if not NAME.match(name):
            return None
        with self._lock:
            found = self._files.get(name)
        return None if found is None else (found[0], found[2])

    def expire(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            old = [n for n, (_, expires, _) in self._files.items() if expires <= now]
            for n in old:
                path, _, _ = self._files.pop(n)
                path.unlink(missing_ok=True)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
