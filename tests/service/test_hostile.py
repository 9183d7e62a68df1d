"""`translate serve` under hostile clients, on 127.0.0.1 with the server's own uvicorn setup (read timeout,
connection limit, guard): every malformed request is a 400 naming its field (never a 500), one request that
fails in the model fails alone, slow or idle connections are closed, and the browser policy holds.

The property test sends any JSON value in any field (and any bytes as the body) and checks that the answer is
one of the statuses a client may get, that its body is JSON of the right shape, and that a well-formed request
right after still gets its correct answer."""

from __future__ import annotations

import json
import logging
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve]'")
pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install -e '.[serve]'")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.service.live import TINY_SEARCH, Endless, call, free_socket, metric  # noqa: E402
from translate.service import ServerConfig, Translator  # noqa: E402
from translate.service.requests import REQUEST_FIELDS  # noqa: E402

ALLOWED = {200, 400, 413, 503, 504}
CONFIG = ServerConfig(char_limit=300, max_body_bytes=20_000, max_queue=64, timeout=20.0, read_timeout=2.0,
                      max_alignment_cells=20_000)  # fmt: skip
GOOD = ["Dios es amor.", "La luz es buena.", "El agua.", "Pedro y Juan."]


class Poisoned:
    """The served model, except that encoding a source with the `marker` id raises (a request that breaks
    the model where it runs). Everything else is the wrapped model's."""

    def __init__(self, model, marker: int):
        self.model, self.marker = model, marker

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def encode(self, src, **kwargs):
        if (src == self.marker).any():
            raise RuntimeError("poisoned source")
        return self.model.encode(src, **kwargs)


def serve(app, config: ServerConfig):
    """The app under translate.service.server's uvicorn config and drain, in a thread -> (server, url)."""
    from translate.service.server import DrainingServer, uvicorn_config

    sock = free_socket()
    server = DrainingServer(uvicorn_config(app, config), app.state.service.counters, config.drain_seconds)
    server.thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    server.thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    return server, f"http://127.0.0.1:{sock.getsockname()[1]}"


def build(translator: Translator, model, config: ServerConfig = CONFIG, search=TINY_SEARCH):
    from translate.service.app import Served, create_app
    from translate.service.worker import Worker

    return create_app({"tiny": Served("tiny", translator, Worker(model, config).start(), search)}, config)


@pytest.fixture(scope="module")
def hostile(served_ckpt):
    """A server whose one model ("tiny") raises when it encodes the poison -> (url, translator, poison)."""
    import torch

    torch.set_num_threads(1)
    tr = Translator.load(served_ckpt)
    good_ids = {i for text in GOOD for i in tr.tokenizer.encode(text, "src")}
    poison = next(t for t in ("Veneno.", "Kilómetro.", "Zafiro xyz.", "Wq.")
                  if set(tr.tokenizer.encode(t, "src")) - good_ids)  # fmt: skip
    marker = next(iter(set(tr.tokenizer.encode(poison, "src")) - good_ids))
    server, url = serve(build(tr, Endless(Poisoned(tr.model, marker)),
                              search=replace(TINY_SEARCH, max_len_b=16)), CONFIG)  # fmt: skip
    for path, body in BASE.items():  # the answers of a fresh server, before any hostile request
        status, _, out = call(url, path, body)
        assert status == 200
        FRESH[path] = answer(path, out)
    yield url, tr, poison
    server.should_exit = True
    server.thread.join(30)


BASE = {"/translate": {"q": "Dios es amor.", "source": "es", "target": "en"},
        "/v1/translate": {"q": "Dios es amor.", "beam": 3, "nbest": 2}}
FRESH: dict = {}


def answer(path: str, out: dict):
    return out["translatedText"] if path == "/translate" else out["translations"]["nbest"]


def post(url: str, path: str, body, **kwargs):
    return call(url, path, body, **kwargs)


# ------------------------------------------------------------------------------------ wrong statuses


@pytest.mark.parametrize(
    "path,raw,content_type,words",
    [
        ("/v1/translate", b'{"q": "Dios", "beam": %s}' % (b"9" * 5000), "application/json", "4300 digits"),
        ("/translate", b"q=Dios&source=es&target=en&alternatives=" + b"9" * 5000,
         "application/x-www-form-urlencoded", "alternatives must be an integer"),
        ("/v1/translate", b"[" * 100_000 + b"]" * 100_000, "application/json", "413"),
        ("/v1/translate", b'{"q": ' + b"[" * 3000 + b"]" * 3000 + b"}", "application/json",
         "nested too deeply"),
        ("/v1/translate", b'{"q": "Dios", "model": ["tiny"]}', "application/json", "model must be a string"),
        ("/v1/translate", b'{"q": "Dios", "model": {"a": 1}}', "application/json", "model must be a string"),
        ("/translate", '{"q": "Dios", "source": "es", "target": "en", "alternatives": "²"}'.encode(),
         "application/json", "alternatives must be an integer"),
        ("/translate", b'{"q": "Dios", "source": ["es"], "target": "en"}', "application/json",
         "source must be a string"),
        ("/v1/translate", b'{"q": "Dios", "alpha": Infinity}', "application/json",
         "Infinity is not a JSON number"),
        ("/v1/translate", b'{"q": "Dios", "alpha": NaN}', "application/json", "NaN is not a JSON number"),
        ("/v1/translate", b'{"q": "Dios", "alpha": 1e999}', "application/json", "must be finite"),
        ("/v1/translate", b'{"q": "Dios", "alpha": 1e308}', "application/json",
         "alpha must be between 0 and 5"),
        ("/v1/translate", b"q=Dios&alpha=nan", "application/x-www-form-urlencoded",
         "alpha must be a finite number"),
        ("/v1/translate", b'{"q": "Dios", "alpha": %s}' % (b"9" * 400), "application/json",
         "alpha must be a finite number"),
        ("/v1/translate", b'{"q": "Dios", "alignment": "maybe"}', "application/json",
         "alignment must be true or false"),
        ("/v1/translate", b'{"q": "Dios", "nbest": 3, "beam": 2}', "application/json",
         "nbest must be between"),
        ("/v1/translate", b"q=Dios&glossary=" + b"[" * 5000, "application/x-www-form-urlencoded",
         "glossary must be an object"),
        ("/translate", b"q=Dios&source=es&target=en&glossary=" + b"9" * 5000,
         "application/x-www-form-urlencoded", "glossary must be an object"),
        ("/v1/translate", b'{"q": "Dios", "strategy": ["beam"]}', "application/json",
         "strategy must be a string, got ['beam']"),
        ("/v1/translate", b'{"q": "Dios", "stopping": ["exact"]}', "application/json",
         "stopping must be a string, got ['exact']"),
        ("/v1/translate", b'{"q": "Dios", "stopping": null}', "application/json",
         "stopping must be a string, got None"),
        ("/v1/translate", b'{"q": "Dios", "stopping": NaN}', "application/json", "NaN is not a JSON number"),
        ("/v1/translate", b'{"q": "Dios", "stopping": 1e999}', "application/json", "must be finite"),
        ("/v1/translate", b'{"q": "Dios", "stopping": ""}', "application/json",
         "stopping must be one of exact|k_ended, got ''"),
        ("/v1/translate", b'{"q": "Dios", "stopping": "%s"}' % (b"x" * 15_000), "application/json",
         "stopping must be one of exact|k_ended"),
        ("/v1/translate", b"q=Dios&stopping=", "application/x-www-form-urlencoded",
         "stopping must be one of exact|k_ended"),
    ],
)  # fmt: skip
def test_malformed_requests_are_400s_naming_the_field(hostile, caplog, path, raw, content_type, words):
    url, _, _ = hostile
    with caplog.at_level(logging.ERROR):
        status, _, out = call(url, path, raw=raw, content_type=content_type)
    if words == "413":
        assert status == 413 and "over the limit" in out["error"]
    else:
        assert status == 400 and words in out["error"], out
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # nothing a 500 would log


def test_a_bug_is_one_500_logged_once(caplog):
    """Whatever reaches the guard is a bug: one JSON 500, one log record with the traceback."""
    import asyncio

    from translate.service.guard import Guard

    async def broken(scope, receive, send):
        raise TypeError("a bug")

    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/x", "headers": [(b"host", b"127.0.0.1:1")]}
    with caplog.at_level(logging.ERROR):
        asyncio.run(Guard(broken, frozenset({"127.0.0.1"}))(scope, None, send))
    assert sent[0]["status"] == 500 and json.loads(sent[1]["body"]) == {"error": "internal error (TypeError)"}
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1


# ------------------------------------------------------------------------------------ isolation


def test_a_poisoned_request_fails_alone_beside_good_ones(hostile):
    """Eight good requests decoding while a request whose source breaks the model joins: the poisoned one is a
    500 with the reason, each good one gets exactly the answer it gets alone, and the next request too."""
    url, _, poison = hostile
    bodies = [{"q": GOOD[i % 4], "beam": 2 + i % 3, "nbest": 1 + i % 2, "alpha": 0.2 * i} for i in range(8)]
    alone = [post(url, "/v1/translate", b) for b in bodies]
    assert [a[0] for a in alone] == [200] * 8
    with ThreadPoolExecutor(9) as pool:
        good = [pool.submit(post, url, "/v1/translate", b) for b in bodies]
        time.sleep(0.05)  # the good ones are decoding (16 steps each)
        bad = post(url, "/v1/translate", {"q": f"{GOOD[0]} {poison}", "beam": 3})
        answers = [g.result(60) for g in good]
    assert bad[0] == 500 and "poisoned source" in bad[2]["error"]
    for (status, _, out), (_, _, want) in zip(answers, alone):
        assert status == 200 and out["translations"]["nbest"] == want["translations"]["nbest"]
    assert post(url, "/v1/translate", bodies[0])[2]["translations"] == alone[0][2]["translations"]


def test_bad_stopping_values_fail_alone_beside_good_ones(hostile):
    """Requests with a hostile `stopping` arrive while good ones (both rules) decode: each bad one is a 400
    naming the field, with a bounded message (a body over the size limit is a 413 before that); each good one
    gets the translations it gets alone."""
    url, _, _ = hostile
    bodies = [{"q": GOOD[i % 4], "beam": 3, "stopping": ("exact", "k_ended")[i % 2]} for i in range(6)]
    alone = [post(url, "/v1/translate", b) for b in bodies]
    assert [a[0] for a in alone] == [200] * 6
    bad = [None, 3, "", "x" * 15_000, ["k_ended"], {"rule": "exact"}, "K_ENDED"]
    with ThreadPoolExecutor(len(bodies) + len(bad)) as pool:
        good = [pool.submit(post, url, "/v1/translate", b) for b in bodies]
        refused = [pool.submit(post, url, "/v1/translate", {"q": GOOD[0], "stopping": v}) for v in bad]
        answers, refusals = [g.result(60) for g in good], [r.result(60) for r in refused]
    for status, _, out in refusals:
        assert status == 400 and out["error"].startswith("stopping must be") and len(out["error"]) < 300, out
    for (status, _, out), (_, _, want) in zip(answers, alone):  # scores: batched float sums, to rounding
        got, exp = out["translations"]["nbest"], want["translations"]["nbest"]
        assert status == 200 and [h["text"] for h in got] == [h["text"] for h in exp]
        assert [h["score"] for h in got] == pytest.approx([h["score"] for h in exp], rel=1e-4)


# ------------------------------------------------------------------------------------ alignment bounds


def test_alignment_size_is_bounded_before_decoding(hostile):
    url, _, _ = hostile
    status, _, out = post(url, "/v1/translate", {"q": "Dios es amor.", "alignment": True, "beam": 2})
    assert status == 200 and out["translations"]["units"][0]["hypotheses"][0]["alignment"]["weights"]
    text = " ".join(GOOD * 5)
    status, _, out = post(url, "/v1/translate", {"q": text, "alignment": True, "beam": 8, "nbest": 8})
    assert status == 413 and "nbest 8" in out["error"] and "over this server's limit of 20000" in out["error"]
    assert post(url, "/v1/translate", {"q": text, "beam": 8, "nbest": 8})[0] == 200  # without: translated


class Gate:
    """The wrapped model, except that attention_weights (one hypothesis' alignment) counts its calls, says it
    was entered and waits until `opened` is set (at most 30 s): an alignment that takes as long as a test
    needs. Everything else is the wrapped model's."""

    def __init__(self, model):
        self.model, self.calls = model, 0
        self.entered, self.opened = threading.Event(), threading.Event()

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def attention_weights(self, src, tgt):
        self.calls += 1
        self.entered.set()
        self.opened.wait(30)
        return self.model.attention_weights(src, tgt)


class GatedTranslator(Translator):
    """A Translator whose alignments come from a Gate (the worker decodes with the real model)."""

    def __init__(self, translator: Translator, gate: Gate):
        super().__init__(translator.engine, langs=translator.langs)
        self.gate = gate

    @property
    def model(self):
        return self.gate


def test_a_client_that_leaves_mid_alignment_stops_its_work(served_ckpt):
    """A real client asks for the alignments of 2 sentences x 2 hypotheses and closes its socket while the
    first is computed: the server sees it leave, the alignment thread stops before the next hypothesis (1
    attention pass of 4) and ends, and the next request gets the answer decoded and aligned offline."""
    from translate.service.alignment import alignment_json

    tr = Translator.load(served_ckpt)
    gate = Gate(tr.model)
    server, url = serve(build(GatedTranslator(tr, gate), tr.model), CONFIG)
    port = int(url.rsplit(":", 1)[1])
    body = {"q": "Dios es amor. La luz es buena.", "alignment": True, "beam": 3, "nbest": 2}
    data = json.dumps(body).encode()
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"POST /v1/translate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(data), data))  # fmt: skip
        assert gate.entered.wait(30), "the alignment did not start"
        sock.close()
        deadline = time.monotonic() + 20
        while metric(url, "translate_client_disconnects_total") < 1:
            assert time.monotonic() < deadline, "the server did not see its client leave"
            time.sleep(0.02)
        assert metric(url, "translate_abandoned_work_total") == 0  # the thread is still in the first one
        gate.opened.set()  # the first alignment ends; the thread sees the stop before the second
        while metric(url, "translate_abandoned_work_total") < 1:
            assert time.monotonic() < deadline, "the alignment thread did not end"
            time.sleep(0.02)
        assert gate.calls == 1
        status, _, out = post(url, "/v1/translate", body)
        units = tr.plan([body["q"]]).units
        hyps = tr.engine.translate_ids(units, replace(TINY_SEARCH, beam_size=3, nbest=2))
        assert status == 200 and gate.calls == 1 + sum(len(h) for h in hyps) == 5
        got = out["translations"]["units"]
        assert [[h["text"] for h in u["hypotheses"]] for u in got] == [[tr.detokenize(h) for h in nb]
                                                                       for nb in hyps]  # fmt: skip
        assert [[h["alignment"] for h in u["hypotheses"]] for u in got] == [
            [alignment_json(tr, ids, h.tokens) for h in nb] for ids, nb in zip(units, hyps)]
    finally:
        gate.opened.set()
        server.should_exit = True
        server.thread.join(30)


def test_alignment_work_stops_when_asked():
    import threading as th

    from translate.service.alignment import AlignmentStopped, alignments

    stop = th.Event()
    stop.set()
    with pytest.raises(AlignmentStopped):
        alignments(None, [[5, 6]], [[object()]], stop)


# ------------------------------------------------------------------------------------ browser policy


def test_host_origin_and_content_type_policy(hostile):
    url, _, _ = hostile
    port = url.rsplit(":", 1)[1]
    status, headers, _ = call(url, "/health")
    assert status == 200 and headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in headers["content-security-policy"]
    foreign = b"GET /health HTTP/1.1\r\nHost: evil.example:%s\r\n\r\n" % port.encode()
    status, _, out = raw_request(port, foreign)
    assert status == 403 and "evil.example" in out["error"]  # DNS rebinding: a foreign name for 127.0.0.1
    body = b'{"q": "Dios"}'
    own = b"http://127.0.0.1:" + port.encode()
    for origin, want in [(b"http://evil.example", 403), (b"null", 403), (own, 200)]:
        head = b"POST /v1/translate HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n" % port.encode()
        head += b"Origin: %s\r\n" % origin
        head += b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        assert raw_request(port, head + body)[0] == want, origin
    status, _, out = call(url, "/v1/translate", raw=body, content_type="text/plain")
    assert status == 415  # a no-preflight text/plain POST is not parsed as JSON


def raw_request(port: str, data: bytes, timeout: float = 10.0):
    with socket.create_connection(("127.0.0.1", int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply.split(b"\r\n\r\n", 1)[1]) < content_length(reply):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    return status, head, json.loads(body) if body else None


def content_length(reply: bytes) -> int:
    for line in reply.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


# ------------------------------------------------------------------------------------ connections


def test_slow_and_idle_connections_are_closed_and_bounded(served_ckpt):
    """Partial headers, headers without their body, an idle connection: each gets a 408 and is closed after
    read_timeout; while max_connections are held a request gets a JSON 503 with Retry-After (not uvicorn's
    plain text), and once they are closed it is served."""
    tr = Translator.load(served_ckpt)
    config = replace(CONFIG, read_timeout=0.5, max_connections=4)
    server, url = serve(build(tr, tr.model, config), config)
    port = int(url.rsplit(":", 1)[1])
    try:
        partial = b"POST /v1/translate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty"
        no_body = b"POST /v1/translate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50\r\n\r\n{"
        waiting = socket.create_connection(("127.0.0.1", port), timeout=10)
        waiting.sendall(no_body)
        assert call(url, "/health")[0] == 200  # its request has begun (and is within the limit: 2 open)
        socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(3)]
        socks[0].sendall(partial)  # socks[1] and socks[2] send nothing at all
        socks.append(waiting)
        deadline = time.monotonic() + 10
        while (status := call(url, "/health"))[0] != 503:  # the fifth, once the server has accepted all four
            assert status[0] == 200 and time.monotonic() < deadline, status
        _, headers, out = status
        assert headers["content-type"] == "application/json" and int(headers["retry-after"]) >= 1
        assert set(out) == {"error"} and "over this server's limit of 4 (--max-connections)" in out["error"]
        assert headers["x-content-type-options"] == "nosniff"
        t0 = time.monotonic()
        for sock in socks:
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
            assert reply.startswith(b"HTTP/1.1 408") and b"did not arrive within 0.5 s" in reply
            sock.close()
        assert time.monotonic() - t0 < 5
        assert call(url, "/health")[0] == 200
    finally:
        server.should_exit = True
        server.thread.join(30)


def test_bytes_that_are_not_http_get_a_json_400(served_ckpt):
    """What h11 cannot parse (a broken request line, 16 KB of headers without their end, two Content-Lengths)
    is a JSON 400 like every other refusal (uvicorn's own is plain text); the server answers the next one."""
    tr = Translator.load(served_ckpt)
    server, url = serve(build(tr, tr.model), CONFIG)
    port = url.rsplit(":", 1)[1]
    try:
        for data in (b"\x00\x01 nonsense\r\n\r\n", b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
                     + b"a" * 20_000, b"POST /v1/translate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Length: 5\r\nContent-Length: 7\r\n\r\n{}"):  # fmt: skip
            status, _, out = raw_request(port, data)
            assert status == 400 and "not a valid HTTP/1.1 request" in out["error"], out
        assert call(url, "/health")[0] == 200
    finally:
        server.should_exit = True
        server.thread.join(30)


def test_retry_after_is_estimated_from_the_backlog():
    from translate.service.worker import Worker

    worker = Worker(object(), ServerConfig(timeout=60.0, scheduler="static"))
    now = time.monotonic()
    worker._rate.extend([(now - 4.0, 0, 0), (now, 400, 20)])  # 5 sentences/s
    assert worker.retry_after(100) == 20 and worker.retry_after(1) == 1
    assert worker.retry_after(10**6) == 60  # never past the request timeout


def test_health_says_draining_before_the_listener_closes(served_ckpt):
    tr = Translator.load(served_ckpt)
    config = replace(CONFIG, drain_seconds=1.0)
    server, url = serve(build(tr, tr.model, config), config)
    try:
        assert call(url, "/health")[2]["status"] == "ok"
        server.handle_exit(signal.SIGTERM, None)  # what the signal handler calls
        assert call(url, "/health")[2]["status"] == "draining"
        assert post(url, "/v1/translate", {"q": "Dios es amor."})[0] == 200  # still served while draining
        server.thread.join(30)
        assert not server.thread.is_alive()
    finally:
        server.should_exit = True
        server.thread.join(30)


# ------------------------------------------------------------------------------------ property


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip
FIELDS = ["q", "source", "target", "format", "alternatives", "model", "beam", "nbest", "alpha", "alignment",
          "api_key", "glossary", "other", *REQUEST_FIELDS]  # fmt: skip
HOSTILE_TEXT = [b'{"q": "Dios", "alpha": NaN}', b'{"q": "Dios", "beam": -Infinity}', b"{" * 50, b"\x00\xff",
                b'{"q": "' + b"\\ud800" * 10 + b'"}', b'{"q": "Dios", "nbest": 1e400}']  # fmt: skip


def well_formed(path: str, status: int, out) -> bool:
    if status != 200:
        return isinstance(out, dict) and set(out) == {"error"} and isinstance(out["error"], str)
    if path == "/translate":
        return isinstance(out, dict) and isinstance(out.get("translatedText"), (str, list))
    return isinstance(out, dict) and {"model", "search", "translations", "timing"} <= set(out)


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    path=st.sampled_from(["/translate", "/v1/translate"]),
    body=st.one_of(
        st.tuples(st.sampled_from(FIELDS), JSON).map(lambda fv: ("field", fv)),
        st.binary(max_size=120).map(lambda b: ("bytes", b)),
        st.sampled_from(HOSTILE_TEXT).map(lambda b: ("bytes", b)),
        JSON.map(lambda v: ("bytes", json.dumps(v).encode())),
    ),
    form=st.booleans(),
)
def test_any_request_gets_an_allowed_status_and_the_next_one_its_answer(hostile, path, body, form):
    url, _, _ = hostile
    base = BASE[path]
    kind, value = body
    if kind == "field":
        name, v = value
        fields = {**base, name: v}
        if form and all(isinstance(x, (str, int)) for x in fields.values()):
            from urllib.parse import urlencode

            raw, ctype = urlencode(fields).encode(), "application/x-www-form-urlencoded"
        else:
            raw, ctype = json.dumps(fields).encode(), "application/json"
    else:
        raw, ctype = value, "application/json"
    status, _, out = call(url, path, raw=raw, content_type=ctype)
    assert status in ALLOWED, (status, out)
    assert well_formed(path, status, out), out
    status, _, out = call(url, path, base)
    assert status == 200 and answer(path, out) == FRESH[path]


def test_the_limits_have_flags_and_refuse_non_finite_values(capsys):
    from translate import serve

    _, server, _, _ = serve.parse(["--max-body-bytes", "5000", "--max-beam", "4", "--read-timeout", "2.5",
                                   "--max-connections", "9", "--max-alignment-cells", "77",
                                   "--drain-seconds", "0", "--allowed-host", "mt.example"])  # fmt: skip
    assert (server.max_body_bytes, server.max_beam, server.read_timeout, server.max_connections,
            server.max_alignment_cells, server.drain_seconds, server.allowed_hosts) == (
            5000, 4, 2.5, 9, 77, 0.0, ("mt.example",))  # fmt: skip
    for argv in (["--timeout", "nan"], ["--read-timeout", "inf"], ["--drain-seconds", "-1"]):
        with pytest.raises(SystemExit):
            serve.parse(argv)
        assert "must be a finite number" in capsys.readouterr().err


def test_the_word_matrix_follows_from_the_compact_alignment():
    import torch

    from translate.evaluation.alignment import to_words
    from translate.service.alignment import word_of, word_weights

    w = torch.softmax(torch.randn(5, 4), -1)  # (T, S): 4 target pieces + EOS, 3 source pieces + EOS
    src_groups, tgt_groups = [[0, 1], [2], [3]], [[0], [1, 2, 3], [4]]
    a = {"weights": w.tolist(), "source_words": ["a", "b", "</s>"], "target_words": ["x", "y", "</s>"],
         "source_word_of": word_of(src_groups), "target_word_of": word_of(tgt_groups)}  # fmt: skip
    want = to_words(w, src_groups, tgt_groups)
    assert torch.allclose(torch.tensor(word_weights(a)), want, atol=1e-6)
