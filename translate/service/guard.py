"""The HTTP guard: the browser policy, the security headers, and the one place a bug becomes a 500.

A pure ASGI middleware around every route (inside Starlette's own error middleware), so it sees each request
before any handler and each exception no handler turned into an answer:

  Host     on a loopback server (the default, 127.0.0.1) a request must name a loopback host (127.0.0.1,
           localhost, [::1]) or one given with --allowed-host; anything else is a 403. A DNS-rebinding page
           (a site whose name resolves to 127.0.0.1 after it loaded) sends its own name, so it cannot read the
           local API. A server listening on another address checks Host only when --allowed-host is given.
  Origin   a POST that carries an Origin header (every browser sends one with a cross-site request, fetch
           and HTML forms alike) must come from the server's own origin (the page at /) or one of
           --cors-origins ("*": any): a web page elsewhere cannot make the server compute, not even with a
           no-preflight form or text/plain POST. Clients that are not browsers (Mastodon, SearXNG, scripts)
           send no Origin and are not affected. Without --cors-origins no CORS headers are sent, so no other
           origin can read an answer either.
  capacity past --max-connections open connections or requests in flight (counted by server.BoundedH11, in
           scope["extensions"][CONNECTIONS]) a request is a 503 with Retry-After (the models' backlog over
           their measured sentences/s, as for a full queue) and the connection is closed.
  headers  every response: X-Content-Type-Options: nosniff, Referrer-Policy: no-referrer, and a
           Content-Security-Policy that allows only the page's own files (default-src 'self',
           frame-ancestors 'none': no framing, no inline script).
  500      an exception that reaches here is a bug: logged once with its traceback, counted, and answered
           {"error": "internal error (TypeError)"} if nothing was sent yet; it is not re-raised, so the
           server does not log it a second time.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)
CONNECTIONS = "translate.connections"  # scope["extensions"] key: (connections or requests held, the limit)
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy",
     b"default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
]  # fmt: skip


def allowed_hosts(bind: str, extra: tuple[str, ...]) -> frozenset[str] | None:
    """The Host names a server listening on `bind` answers to; None = any ("*" given, or a non-loopback bind
    address with no --allowed-host)."""
    if "*" in extra:
        return None
    if bind not in LOOPBACK and not extra:
        return None
    return LOOPBACK | {bind.lower()} | {h.lower() for h in extra}


def host_name(host: str) -> str:
    """A Host header without its port: "127.0.0.1:8000" -> "127.0.0.1", "[::1]:80" -> "[::1]"."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    def __init__(self, app: ASGIApp, hosts: frozenset[str] | None, origins: frozenset[str] = frozenset()):
        """hosts: allowed_hosts(); origins: the CORS origins that may POST besides the server's own."""
        self.app, self.hosts, self.origins = app, hosts, origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self.refusal(scope["method"], headers)
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        if refusal is not None:
            self.count(scope, 403)
            await respond(guarded_send, 403, refusal)
            return
        held, limit = (scope.get("extensions") or {}).get(CONNECTIONS, (0, 0))
        if limit and held > limit:
            self.count(scope, 503)
            await respond(guarded_send, 503, f"{held} connections or requests open, over this server's limit "
                                             f"of {limit} (--max-connections); retry later",
                          [(b"retry-after", str(self.retry_after(scope)).encode()),
                           (b"connection", b"close")])  # fmt: skip
            return
        try:
            await self.app(scope, receive, guarded_send)
        except Exception as e:
            log.exception("error while serving %s %s", scope["method"], scope["path"])
            self.count(scope, 500)
            if not started:
                await respond(guarded_send, 500, f"internal error ({type(e).__name__})")

    def refusal(self, method: str, headers: Headers) -> str | None:
        """Why the browser policy refuses this request (None: it does not)."""
        host = headers.get("host", "")
        if self.hosts is not None and host_name(host) not in self.hosts:
            shown = host if len(host) <= 60 else host[:57] + "..."
            return (f"Host {shown!r} is not a name this server answers to ({', '.join(sorted(self.hosts))}; "
                    "add one with --allowed-host)")  # fmt: skip
        origin = headers.get("origin")
        if method not in ("GET", "HEAD", "OPTIONS") and origin is not None and not self.cors(origin):
            netloc = urlsplit(origin).netloc.lower() if origin != "null" else ""
            if not netloc or netloc != host.strip().lower():
                shown = origin if len(origin) <= 60 else origin[:57] + "..."
                return f"cross-origin request from {shown!r} refused: only this server's own page may POST"
        return None

    def cors(self, origin: str) -> bool:
        allowed = {o.rstrip("/").lower() for o in self.origins}
        return "*" in allowed or origin.rstrip("/").lower() in allowed

    @staticmethod
    def count(scope: Scope, status: int) -> None:
        state = service_state(scope)
        if state is not None:
            state.counters.count(status)

    @staticmethod
    def retry_after(scope: Scope) -> int:
        """Seconds until the busiest model's backlog (waiting and running sentences) is likely done."""
        state = service_state(scope)
        workers = [s.worker for s in state.served.values()] if state is not None else []
        return max((w.retry_after(w.queue_depth + w.active) for w in workers), default=1)


def service_state(scope: Scope):
    """The app's State (app.state.service), or None outside the translate app."""
    return getattr(getattr(scope.get("app"), "state", None), "service", None)


async def respond(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *headers]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
