"""Who may use the server and how much, as LibreTranslate does it (its app.py access_check and limiter), all
off by default:

  api_keys FILE     one key a line, optionally with its own limits: "KEY [REQ_LIMIT [CHAR_LIMIT]]" (blank
                    lines and "# ..." comments skipped); a request names its key in the api_key field
  require_api_key   a request without a key: 400 "Please contact the server operator to get an API key"
                    (with keys but not required, anyone may call without one, limited by address)
  a wrong key       403 "Invalid API key", required or not
  req_limit         requests per minute per key (or client address without one) over a sliding 60-s window;
                    a batch (q a list) costs its length; over it: 429 "Slowdown: N per 1 minute"
  batch_limit       texts in one q list; more: 413
  char_limit        a key's own CHAR_LIMIT replaces the server's --char-limit for its requests

The client address is the connection's (X-Forwarded-For is not trusted: no proxy is assumed).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request

from translate.service.config import ServerConfig
from translate.service.requests import ApiError, string

WINDOW = 60.0  # seconds: req_limit is per minute


class ApiKeysError(ValueError):
    """The keys file cannot be read: one line naming the file and line."""


@dataclass(frozen=True)
class KeyLimits:
    req_limit: int | None = None  # per minute; None: the server's req_limit
    char_limit: int | None = None  # per request; None: the server's char_limit


def load_api_keys(path: str | Path) -> dict[str, KeyLimits]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ApiKeysError(f"{path}: cannot read the API keys file ({e})") from None
    keys: dict[str, KeyLimits] = {}
    for n, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) > 3 or not all(w.isdigit() and int(w) > 0 for w in words[1:]):
            raise ApiKeysError(f"{path}:{n}: expected KEY [REQ_LIMIT [CHAR_LIMIT]] with positive integers, "
                               f"got {line.strip()!r}")  # fmt: skip
        if words[0] in keys:
            raise ApiKeysError(f"{path}:{n}: the key {words[0]!r} is given twice")
        limits = [int(w) for w in words[1:]] + [None, None]
        keys[words[0]] = KeyLimits(limits[0], limits[1])
    if not keys:
        raise ApiKeysError(f"{path}: no API key in the file")
    return keys


class RateLimiter:
    """Requests per client over a sliding window: take() records a request's cost if it fits."""

    def __init__(self, window: float = WINDOW):
        self.window = window
        self._hits: dict[str, deque[tuple[float, int]]] = {}
        self._lock = threading.Lock()

    def take(self, who: str, cost: int, limit: int, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.setdefault(who, deque())
            while hits and hits[0][0] <= now - self.window:
                hits.popleft()
            if sum(c for _, c in hits) + cost > limit:
                return False
            hits.append((now, cost))
            if len(self._hits) > 10_000:  # forget clients whose window is empty
                self._hits = {k: v for k, v in self._hits.items() if v and v[-1][0] > now - self.window}
            return True


class Access:
    def __init__(self, config: ServerConfig):
        """Raises ApiKeysError for an unreadable or malformed keys file."""
        self.config = config
        self.keys = load_api_keys(config.api_keys) if config.api_keys else None
        self.limiter = RateLimiter()

    def check(self, request: Request, fields: dict, cost: int | None = None) -> int:
        """Let a request in or raise ApiError (400 no key, 403 wrong key, 413 batch, 429 slow down);
        -> the char limit for its text. cost: what it counts against req_limit (default: a batch its
        length, else 1; a file its bytes / char_limit, as LibreTranslate)."""
        config, key = self.config, string(fields, "api_key") or None
        limits = KeyLimits()
        if self.keys is not None:
            if key is not None:
                if key not in self.keys:
                    raise ApiError(403, "Invalid API key")
                limits = self.keys[key]
            elif config.require_api_key:
                raise ApiError(400, "Please contact the server operator to get an API key")
        else:
            key = None  # no keys: every client is limited by its address
        q = fields.get("q")
        if cost is None:
            cost = max(1, len(q)) if isinstance(q, list) else 1
        if isinstance(q, list) and config.batch_limit and len(q) > config.batch_limit:
            limit = config.batch_limit
            raise ApiError(413, f"q has {len(q)} texts, over this server's batch limit of {limit}")
        per_minute = limits.req_limit or config.req_limit
        who = f"key:{key}" if key else f"address:{request.client.host if request.client else '?'}"
        if per_minute and not self.limiter.take(who, cost, per_minute):
            raise ApiError(429, f"Slowdown: {per_minute} per 1 minute")
        return limits.char_limit or config.char_limit
