"""Running the app under uvicorn with bounds on what a connection may hold: the read timeout, the number of
open connections, and a drain period in which /health says "draining" before the listener closes.

  read_timeout     a request's headers and body must arrive within this many seconds of the connection
                   opening (or of the previous answer on a kept-alive connection); otherwise the server
                   answers 408 and closes it. uvicorn has no such timer (its timeout_keep_alive only covers
                   idle time between requests), so BoundedH11 adds one to its h11 protocol.
  max_connections  past this many open connections (or requests in flight) a request gets a JSON 503 with a
                   Retry-After, like every other refusal. uvicorn's own limit_concurrency counts the same
                   two things but answers plain text, so it is not set: the protocol counts them instead
                   (BoundedH11) and hands the count to the guard (guard.CONNECTIONS), which refuses.
  (bad HTTP)       bytes h11 cannot read as a request (a broken request line, headers over 16 KB) get a JSON
                   400 and the connection is closed, where uvicorn would answer plain text.
  drain_seconds    on SIGTERM (or Ctrl-C) /health reports "draining" this long while requests are still
                   served (a load balancer stops sending), then uvicorn stops accepting, finishes the running
                   requests and the workers finish their batches.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from functools import partial

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from translate.service.config import ServerConfig
from translate.service.guard import CONNECTIONS

log = logging.getLogger(__name__)


class BoundedH11(H11Protocol):
    """uvicorn's h11 protocol with a deadline for reading each request (read_timeout) and the count of open
    connections and requests in flight in every request's scope (both set by protocol())."""

    read_timeout: float = 10.0
    max_connections: int = 100

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.app = partial(self._counted, self.app)

    async def _counted(self, app, scope, receive, send) -> None:
        """The app, with (open connections or requests in flight, whichever is more; the limit) in
        scope["extensions"][CONNECTIONS]. This connection and this request count themselves."""
        if scope["type"] == "http":
            held = max(len(self.connections), len(self.tasks))
            scope = {**scope, "extensions": {**(scope.get("extensions") or {}),
                                             CONNECTIONS: (held, self.max_connections)}}  # fmt: skip
        await app(scope, receive, send)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._read_timer: asyncio.TimerHandle | None = None
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._check()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection has its own deadline
            self._check()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(self.read_timeout, self._expired)

    def _disarm(self) -> None:
        timer = getattr(self, "_read_timer", None)
        if timer is not None:
            timer.cancel()
            self._read_timer = None

    def _check(self) -> None:
        """The request has arrived whole: no deadline for reading until the answer is sent."""
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED):
            self._disarm()

    def _expired(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete or not self.cycle.response_started:
            error = f"the request did not arrive within {self.read_timeout:g} s"
            self._answer_and_close(b"408 Request Timeout", error)
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """Bytes h11 cannot read as a request (uvicorn's answer is plain text): a JSON 400, then closed."""
        self._answer_and_close(b"400 Bad Request", "the bytes received are not a valid HTTP/1.1 request (its "
                                                   "request line, its headers, or headers over 16 KB)")

    def _answer_and_close(self, status: bytes, error: str) -> None:
        """{"error": error} written on the connection as it stands (outside h11's state machine), closed."""
        body = json.dumps({"error": error}).encode()
        head = b"HTTP/1.1 %s\r\ncontent-type: application/json\r\nconnection: close\r\n" % status
        self.transport.write(head + b"content-length: %d\r\n\r\n%s" % (len(body), body))
        self.transport.close()


def protocol(read_timeout: float, max_connections: int) -> type[BoundedH11]:
    bounds = {"read_timeout": read_timeout, "max_connections": max_connections}
    return type("BoundedH11", (BoundedH11,), bounds)


def uvicorn_config(app, config: ServerConfig, **kwargs) -> uvicorn.Config:
    """uvicorn's Config for this server: the h11 protocol with the read timeout and the connection count
    (limit_concurrency stays unset: its 503 is plain text; the guard refuses with JSON)."""
    return uvicorn.Config(app, host=config.host, port=config.port,
                          http=protocol(config.read_timeout, config.max_connections), timeout_keep_alive=5,
                          log_level="warning", access_log=False, **kwargs)  # fmt: skip


class DrainingServer(uvicorn.Server):
    """uvicorn.Server whose first SIGTERM/SIGINT marks the app draining for drain_seconds before uvicorn's
    own shutdown starts (a second signal shuts down at once)."""

    def __init__(self, config: uvicorn.Config, counters, drain_seconds: float):
        super().__init__(config)
        self.counters, self.drain_seconds = counters, drain_seconds
        self._timer: threading.Timer | None = None

    def handle_exit(self, sig, frame) -> None:
        if self.drain_seconds > 0 and self._timer is None and not self.counters.draining:
            self.counters.draining = True
            log.info("draining: /health says so for %g s, then the listener closes", self.drain_seconds)
            self._timer = threading.Timer(self.drain_seconds, super().handle_exit, (sig, frame))
            self._timer.daemon = True
            self._timer.start()
            return
        super().handle_exit(sig, frame)
