"""The one home of the serving defaults: how text is cut into units, and how `translate serve` runs.

The decoding settings (beam, length penalty, length limit, token budget) are not here: they are
translate.search.SearchConfig's, for the CLI and the server alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import urlsplit

SCHEDULERS = ("continuous", "static", "sequential")
KV_CACHES = ("contiguous", "paged")


@dataclass(frozen=True)
class ServiceConfig:
    max_src_len: int = 512  # a longer sentence is cut at its best split points into units of at most this

    def __post_init__(self) -> None:
        if self.max_src_len < 1:
            raise ValueError(f"max_src_len must be >= 1, got {self.max_src_len}")


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"  # loopback only unless asked
    port: int = 8000
    char_limit: int = 5000  # characters per request (all q strings together); more -> 413
    max_body_bytes: int = 1_000_000  # request body; more -> 413 before it is parsed
    max_queue: int = 256  # sentences waiting for the model worker; more -> 503 with Retry-After
    timeout: float = 60.0  # seconds a request may take from arrival; then 504
    scheduler: str = "continuous"  # continuous | static (batch what is queued) | sequential (one request)
    # the worker's decoder self-attention cache: at beam 5 paged was 3-10% faster per step with 16-32
    # sentences running and needed 1.7-2.4x less memory; contiguous was 15% faster with one
    # (translate/service/README.md)
    kv_cache: str = "paged"  # paged | contiguous
    block_size: int = 16  # tokens per block of the paged cache
    max_beam: int = 16  # the widest beam (and most alternatives + 1) a request may ask for
    # alignment weights per request: units x n-best x (target pieces + 1) x (source pieces + 1), with the
    # target at its length limit, checked before decoding; more -> 413 (about 7 bytes of JSON a weight)
    max_alignment_cells: int = 1_000_000
    read_timeout: float = 10.0  # seconds to receive a request's headers and body; then 408 and closed
    max_connections: int = 100  # open connections or requests in flight; more: a JSON 503 (service/guard.py)
    drain_seconds: float = 1.0  # after SIGTERM, /health says "draining" this long before the listener closes
    allowed_hosts: tuple[str, ...] = ()  # Host names besides the loopback ones ("*": any; service/guard.py)
    # LibreTranslate's access rules, all off by default (translate/service/access.py)
    req_limit: int = 0  # requests a minute per API key or client address (a batch costs its length); 0: none
    batch_limit: int = 0  # texts in one request's q list; more -> 413; 0: no limit
    api_keys: str = ""  # a file: one key a line, optionally "KEY REQ_LIMIT [CHAR_LIMIT]"; "": no keys
    require_api_key: bool = False  # a request without a key is a 400 (needs api_keys)
    # origins a browser may call this server from ("*" = any, LibreTranslate's behaviour); none by default,
    # since the server listens on 127.0.0.1 and a page on any site could otherwise use it through the browser
    cors_origins: tuple[str, ...] = ()
    max_file_bytes: int = 2_000_000  # POST /translate_file: a bigger file is a 400
    file_ttl: float = 600.0  # seconds a translated file can be downloaded; then it is deleted

    def __post_init__(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {'|'.join(SCHEDULERS)}, got {self.scheduler!r}")
        if self.kv_cache not in KV_CACHES:
            raise ValueError(f"kv_cache must be one of {'|'.join(KV_CACHES)}, got {self.kv_cache!r}")
        for name in ("char_limit", "max_body_bytes", "max_queue", "block_size", "max_beam", "max_file_bytes",
                     "max_alignment_cells", "max_connections"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("req_limit", "batch_limit"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0: no limit), got {getattr(self, name)}")
        if self.require_api_key and not self.api_keys:
            raise ValueError("require_api_key needs --api-keys FILE")
        for origin in self.cors_origins:
            url = urlsplit(origin)
            bad = url.scheme not in ("http", "https") or not url.netloc or url.path or url.query
            if origin != "*" and bad:
                raise ValueError(f"cors_origins {origin!r} is neither * nor an origin like https://example.org")
        for name in ("timeout", "file_ttl", "read_timeout", "drain_seconds"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0 or (value == 0 and name != "drain_seconds"):
                sign = ">= 0" if name == "drain_seconds" else "> 0"
                raise ValueError(f"{name} must be a finite number {sign}, got {value}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")
