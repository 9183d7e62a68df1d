"""A live `translate serve` app on 127.0.0.1 (uvicorn in a thread, a free port) over a tiny checkpoint.

A pytest plugin (tests/conftest.py loads it): the fixtures served_ckpt and live, and the helpers the
server and browser tests import (call, metric, start, stop).

Three served models share the checkpoint: "tiny" (es -> en, short outputs), "slow" (es -> en, greedy, never
ending before 400 tokens: a request that stays in the batch long enough to be cancelled) and "fr" (claims
fr -> en, so the server has two source languages and LibreTranslate's source "auto" must be refused).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from translate.data.vocab import EOS_ID
from translate.search import SearchConfig
from translate.service import Languages, ServerConfig, Translator

TINY_SEARCH = SearchConfig(beam_size=3, max_len_a=0.0, max_len_b=6)
SLOW_SEARCH = SearchConfig(beam_size=1, max_len_a=0.0, max_len_b=400)


class Endless:
    """A model that never ends a sentence before its length limit (EOS logit -30): work that stays in the
    batch for a known number of steps. Everything but step() is the wrapped model's."""

    def __init__(self, model):
        self.model = model

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def step(self, tokens, state):
        logits, state = self.model.step(tokens, state)
        return logits.index_fill(1, torch.tensor([EOS_ID], device=logits.device), -30.0), state


@dataclass
class Live:
    url: str
    ckpt: Path
    translator: Translator
    served: dict
    server: object


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def start(app, timeout: float = 30.0):
    """uvicorn serving `app` in a thread on a free 127.0.0.1 port -> (server, url)."""
    import uvicorn

    sock = free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    server.thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    server.thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    return server, f"http://127.0.0.1:{sock.getsockname()[1]}"


def stop(server, timeout: float = 30.0) -> None:
    server.should_exit = True
    server.thread.join(timeout)


def call(url: str, path: str, body=None, *, raw: bytes | None = None, content_type="application/json",
         timeout: float = 60.0):  # fmt: skip
    """-> (status, headers, JSON or text) of one request to 127.0.0.1 (errors are answers, not raises)."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method="GET" if data is None else "POST")
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, headers, payload = r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        status, headers, payload = e.code, dict(e.headers), e.read()
    text = payload.decode()
    try:
        return status, headers, json.loads(text)
    except json.JSONDecodeError:
        return status, headers, text


def metric(url: str, name: str, model: str | None = None) -> float:
    """One value of the server's /metrics (the line `name{model="..."} value`, or `name value`)."""
    _, _, text = call(url, "/metrics")
    label = f'{{model="{model}"}}' if model else ""
    return float(next(line.split()[-1] for line in text.splitlines() if line.startswith(name + label + " ")))


@pytest.fixture(scope="session")
def served_ckpt(tmp_path_factory, tiny_checkpoint) -> Path:
    tmp = tmp_path_factory.mktemp("serve")
    return tiny_checkpoint(tmp / "best.pt", "transformer", tmp / "cache")


@pytest.fixture(scope="session")
def live(served_ckpt):
    import torch

    from translate.service.app import Served, create_app
    from translate.service.worker import Worker

    torch.set_num_threads(1)
    config = ServerConfig(char_limit=2000, max_body_bytes=20_000, max_queue=64, timeout=30.0)
    tr = Translator.load(served_ckpt)
    fr = Translator(tr.engine, langs=Languages("fr", "en"))
    served = {
        "tiny": Served("tiny", tr, Worker(tr.model, config).start(), TINY_SEARCH),
        "slow": Served("slow", tr, Worker(Endless(tr.model), config).start(), SLOW_SEARCH),
        "fr": Served("fr", fr, Worker(tr.model, config).start(), TINY_SEARCH),
    }
    server, url = start(create_app(served, config))
    yield Live(url, served_ckpt, tr, served, server)
    stop(server)
