"""What the route handlers share, kept in `app.state` (FastAPI's "bigger applications" layout): the served
models, the server's config and the response counters. Handlers reach it with state_of(request)."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from translate.search import SearchConfig
from translate.service.access import Access
from translate.service.config import ServerConfig
from translate.service.detect import Detector
from translate.service.downloads import Downloads
from translate.service.metrics import Counters
from translate.service.translator import Translator
from translate.service.worker import Worker


@dataclass
class Served:
    name: str
    translator: Translator
    worker: Worker
    search: SearchConfig  # the defaults a request may change


@dataclass
class State:
    served: dict[str, Served]
    config: ServerConfig
    access: Access  # API keys and limits
    detector: Detector  # over every language the served models read or write
    downloads: Downloads  # translated files
    counters: Counters = field(default_factory=Counters)


def languages_of(served: dict[str, Served]) -> list[str]:
    """Every language the served models read or write."""
    return sorted({c for s in served.values() for c in (s.translator.langs.src, s.translator.langs.tgt)})


def state_of(request: Request) -> State:
    return request.app.state.service
