"""`translate serve` over HTTP on 127.0.0.1: the LibreTranslate API through the real libretranslatepy client,
/v1/translate, concurrent clients, errors (400/413/503/504), a client that leaves, metrics and SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve]'")
pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install -e '.[serve]'")

from tests.service.live import TINY_SEARCH, call, metric, start, stop  # noqa: E402
from translate.search import SearchConfig  # noqa: E402
from translate.service import ServerConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def offline(live, text: str, search: SearchConfig = TINY_SEARCH) -> list[str]:
    """What the server must answer: the Translator on the same text, decoded offline (translate_ids)."""
    lines = live.translator.translate(text.split("\n"), search)
    return ["\n".join(line[i] for line in lines) for i in range(search.nbest)]


def test_libretranslate_client(live):
    lt = pytest.importorskip("libretranslatepy").LibreTranslateAPI(live.url)
    langs = {entry["code"]: entry for entry in lt.languages()}
    assert (
        langs["es"]["targets"] == ["en"] and langs["fr"]["targets"] == ["en"] and langs["en"]["targets"] == []
    )
    text = "Dios es amor. La luz es buena."
    assert lt.translate(text, "es", "en") == offline(live, text)[0]


def test_libretranslate_json_lists_alternatives_and_auto(live):
    body = {"q": ["Dios es amor.", "La luz.\n\nEl agua."], "source": "es", "target": "en", "alternatives": 2}
    status, _, out = call(live.url, "/translate", body)
    search = SearchConfig(**{**TINY_SEARCH.__dict__, "nbest": 3})
    want = [offline(live, q, search) for q in body["q"]]
    assert status == 200 and out["translatedText"] == [w[0] for w in want]
    assert out["alternatives"] == [w[1:] for w in want] and out["translatedText"][1].count("\n") == 2
    status, _, out = call(live.url, "/translate", {"q": "Dios es amor.", "source": "auto", "target": "en"})
    assert status == 200 and out["detectedLanguage"]["language"] == "es"  # es and fr are served: detected
    assert out["translatedText"] == offline(live, "Dios es amor.")[0]
    status, _, out = call(live.url, "/translate", {"q": "Hola.", "source": "de", "target": "en"})
    assert status == 400 and "de-en is not served" in out["error"]


def test_v1_translate_nbest_scores_and_alignment(live):
    body = {"q": "Dios es amor.", "model": "tiny", "beam": 3, "nbest": 2, "alignment": True}
    status, _, out = call(live.url, "/v1/translate", body)
    shown = {k: out["search"][k] for k in ("beam", "nbest", "alpha", "strategy")}
    assert status == 200 and shown == {"beam": 3, "nbest": 2, "alpha": TINY_SEARCH.alpha, "strategy": "beam"}
    t = out["translations"]
    assert [a["text"] for a in t["nbest"]] == offline(
        live, body["q"], SearchConfig(beam_size=3, nbest=2, max_len_a=0, max_len_b=6)
    )
    assert t["nbest"][0]["score"] >= t["nbest"][1]["score"]
    hyp = t["units"][0]["hypotheses"][0]
    a = hyp["alignment"]
    tokens = live.translator.tokenizer.encode(hyp["text"], "tgt")
    assert len(a["weights"]) == len(a["target"]) and len(a["weights"][0]) == len(a["source"])
    assert "word_weights" not in a  # compact: the words follow from the pieces and *_word_of
    assert len(a["target_word_of"]) == len(a["target"]) and len(a["source_word_of"]) == len(a["source"])
    assert a["target_word_of"][-1] == len(a["target_words"]) - 1 == max(a["target_word_of"])
    assert a["source_word_of"][-1] == len(a["source_words"]) - 1 == max(a["source_word_of"])
    assert a["source_words"][-1] == "</s>" and len(a["target"]) >= len(tokens)
    assert all(abs(sum(row) - 1) < 1e-3 for row in a["weights"])  # each target piece attends with mass 1
    assert set(out["timing"]) == {"queue_ms", "decode_ms", "total_ms"}
    status, _, out = call(live.url, "/v1/translate", {"q": "Dios.", "model": "tiny", "beam": 1})
    assert status == 200 and out["translations"]["nbest"][0]["score"] is None  # greedy: unranked
    status, _, out = call(live.url, "/v1/translate", {**body, "stopping": "k_ended"})  # CTranslate2's rule
    assert status == 200 and out["search"]["stopping"] == "k_ended"
    assert [a["text"] for a in out["translations"]["nbest"]] == offline(
        live, body["q"], SearchConfig(beam_size=3, nbest=2, max_len_a=0, max_len_b=6, stopping="k_ended")
    )
    status, _, err = call(live.url, "/v1/translate", {**body, "stopping": "never"})
    assert status == 400 and "stopping must be one of exact|k_ended" in err["error"], err


def test_v1_translate_samples_with_a_seed_and_controls_repetition(live):
    """strategy, sampling_* and seed reach the search: a request's sample is the offline one with the same
    settings, whatever else is running; the repetition settings are read and echoed."""
    body = {"q": "Dios es amor. La luz.", "model": "tiny", "strategy": "sample", "seed": 11,
            "sampling_temperature": 2.0, "repeat_guard": 2, "no_repeat_ngram_size": 2}  # fmt: skip
    status, _, out = call(live.url, "/v1/translate", body)
    assert status == 200 and out["search"]["strategy"] == "sample" and out["search"]["seed"] == 11
    search = SearchConfig(strategy="sample", nbest=1, seed=11, sampling_temperature=2.0, repeat_guard=2,
                          no_repeat_ngram_size=2, max_len_a=0, max_len_b=6)  # fmt: skip
    assert out["translations"]["text"] == offline(live, body["q"], search)[0]
    again = [call(live.url, "/v1/translate", {**body, "seed": s})[2]["translations"]["text"]
             for s in (11, 12, 13)]  # fmt: skip
    assert again[0] == out["translations"]["text"] and len(set(again)) > 1
    for bad, words in (({"strategy": "nope"}, "strategy must be one of"), ({"seed": -1}, "seed must be"),
                       ({"sampling_topp": 0}, "sampling_topp must be"),
                       ({"strategy": 3}, "must be a string")):  # fmt: skip
        status, _, err = call(live.url, "/v1/translate", {**body, **bad})
        assert status == 400 and words in err["error"], err


def test_glossary_in_v1_and_libretranslate_requests(live):
    body = {"q": "Dios es amor. El amor.", "model": "tiny", "glossary": {"Dios": "Lord", "amor": "love"}}
    status, _, out = call(live.url, "/v1/translate", body)  # one term per sentence fits the tiny limit
    text = out["translations"]["text"]
    assert status == 200 and "Lord" in text and "love" in text.split("Lord", 1)[1]
    libre = {"q": ["Dios es amor.", "Nada."], "source": "es", "target": "en", "glossary": {"Dios": "Lord"}}
    status, _, out = call(live.url, "/translate", libre)
    assert status == 200 and "Lord" in out["translatedText"][0]
    assert out["translatedText"][1] == offline(live, "Nada.")[0]
    for bad, words in (({"glossary": "Dios"}, "glossary must be"),
                       ({"glossary": {"Dios": ""}}, "non-empty"),
                       ({"beam": 1}, "glossary needs beam search")):  # fmt: skip
        status, _, err = call(live.url, "/v1/translate", {**body, **bad})
        assert status == 400 and words in err["error"], err


def test_concurrent_clients_get_exactly_their_own_results(live):
    texts = [f"{w} es amor. La luz {i}." for i, w in enumerate(["Dios", "Pedro", "Juan", "El agua"] * 6)]
    wanted = {t: offline(live, t)[0] for t in texts}

    def one(text):
        return call(live.url, "/translate", {"q": text, "source": "es", "target": "en"})

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(one, texts))
    assert [a[0] for a in answers] == [200] * len(texts)
    assert [a[2]["translatedText"] for a in answers] == [wanted[t] for t in texts]


@pytest.mark.parametrize(
    "raw,content_type,status,words",
    [
        (b"", "application/json", 400, "empty request body"),
        (b'{"q": "Dios \xff"}', "application/json", 400, "not valid UTF-8"),
        (b'{"q": "Dios"', "application/json", 400, "not valid JSON"),
        (b'["Dios"]', "application/json", 400, "JSON object"),
        (b'{"q": 7}', "application/json", 400, "q must be a string"),
        (b'{"text": "Dios"}', "application/json", 400, "missing field q"),
        (b"x" * 20_001, "application/json", 413, "over the limit"),
        (('{"q": "%s"}' % ("a" * 2001)).encode(), "application/json", 413, "over this server's limit"),
        (b'{"q": "Dios", "model": "nope"}', "application/json", 400, "unknown model"),
        (b'{"q": "Dios", "model": "tiny", "beam": 0}', "application/json", 400, "beam must be between 1"),
        (b'{"q": "Dios", "model": "tiny", "beam": 99}', "application/json", 400, "beam must be at most"),
        (
            b'{"q": "Dios", "model": "tiny", "beam": 2, "nbest": 3}',
            "application/json",
            400,
            "nbest must be between",
        ),
        (b"q=Dios", "multipart/form-data", 400, "multipart body"),
        (b"<q>Dios</q>", "application/xml", 415, "unsupported content type"),
        (b'{"q": "Dios"}', "text/plain", 415, "unsupported content type"),
    ],
)
def test_bad_requests_are_json_errors_with_their_status(live, raw, content_type, status, words):
    got, _, out = call(live.url, "/v1/translate", raw=raw, content_type=content_type)
    assert got == status and words in out["error"]


def test_odd_but_valid_text_is_translated(live):
    """A lone surrogate from JSON ("\\ud800") is made valid (data.lines.clean_text), not a 500; an empty q
    gives an empty answer."""
    from translate.data.lines import clean_text

    raw = b'{"q": ["\\ud800 Dios es amor.", "", "\\u2028"], "source": "es", "target": "en"}'
    status, _, out = call(live.url, "/translate", raw=raw)
    valid, _ = clean_text("\ud800 Dios es amor.")
    assert status == 200 and out["translatedText"][0] == offline(live, valid)[0]
    assert out["translatedText"][1] == ""


def test_unknown_path_is_a_json_404(live):
    assert call(live.url, "/nowhere")[0] == 404 and "error" in call(live.url, "/nowhere")[2]


def test_a_client_that_leaves_has_its_sentences_dropped(live):
    body = b'{"q": "Dios es amor.", "model": "slow", "beam": 1}'
    sock = socket.create_connection(("127.0.0.1", int(live.url.rsplit(":", 1)[1])), timeout=10)
    sock.sendall(b"POST /v1/translate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip
    left = metric(live.url, "translate_client_disconnects_total")
    done_before = metric(live.url, "translate_sentences_total", "slow")
    deadline = time.monotonic() + 20
    while metric(live.url, "translate_active_sequences", "slow") < 1:  # it is decoding (400 tokens to go)
        assert time.monotonic() < deadline
        time.sleep(0.01)
    sock.close()
    while metric(live.url, "translate_active_sequences", "slow") > 0:
        assert time.monotonic() < deadline, "the sentence stayed in the batch after its client left"
        time.sleep(0.02)
    assert metric(live.url, "translate_client_disconnects_total") == left + 1
    assert metric(live.url, "translate_sentences_total", "slow") == done_before  # dropped, not finished


def test_metrics_and_health(live):
    before = metric(live.url, "translate_generated_tokens_total", "tiny")
    call(live.url, "/translate", {"q": "Dios es amor.", "source": "es", "target": "en"})
    assert call(live.url, "/health")[2] == {"status": "ok", "models": ["tiny", "slow", "fr"]}
    units = live.translator.plan(["Dios es amor."]).units
    hyps = live.translator.engine.translate_ids(units, TINY_SEARCH)  # the best hypothesis and its EOS count
    assert metric(live.url, "translate_generated_tokens_total", "tiny") - before == sum(
        len(nb[0].tokens) + 1 for nb in hyps
    )
    for name in ("translate_queue_depth", "translate_active_sequences", "translate_kv_blocks_in_use",
                 "translate_tokens_per_second"):  # fmt: skip
        assert metric(live.url, name, "tiny") >= 0


def test_full_queue_is_503_with_retry_after_and_a_passed_deadline_is_504(live):
    """A worker that is never started: the first request waits until its deadline (504), and while it waits
    the queue (max_queue=2 sentences) has no room for another (503)."""
    from translate.service.app import Served, create_app
    from translate.service.worker import Worker

    config = ServerConfig(max_queue=2, timeout=1.5)
    tr = live.translator
    server, url = start(
        create_app({"tiny": Served("tiny", tr, Worker(tr.model, config), TINY_SEARCH)}, config)
    )
    try:
        results: list = []
        first = threading.Thread(
            target=lambda: results.append(call(url, "/v1/translate", {"q": "Uno. Dos."}))
        )
        first.start()
        deadline = time.monotonic() + 10
        while metric(url, "translate_queue_depth", "tiny") < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        status, headers, out = call(url, "/v1/translate", {"q": "Tres."})
        assert status == 503 and int(headers["retry-after"]) >= 1 and "queue is full" in out["error"]
        first.join(15)
        assert results[0][0] == 504 and "within 1.5 s" in results[0][2]["error"]
        status, _, out = call(url, "/v1/translate", {"q": " ".join(["Uno."] * 3)})
        assert status == 413 and "more than this server queues" in out["error"]
    finally:
        stop(server)


def test_sigterm_drains_the_running_batch(served_ckpt, tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "translate.cli", "serve", "--model", f"tiny={served_ckpt}",
                             "--port", str(port), "--threads", "1", "--max-queue", "1000"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if call(url, "/health", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.1)
        texts = [f"Dios es amor {i}. La luz es buena y el agua es buena." for i in range(40)]
        answers: list = []
        client = threading.Thread(
            target=lambda: answers.append(call(url, "/v1/translate", {"q": texts, "beam": 8}))
        )
        client.start()
        while metric(url, "translate_active_sequences", "tiny") < 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        client.join(60)
        assert proc.wait(60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has drained
        status, _, out = answers[0]
        assert status == 200 and len(out["translations"]) == 40  # the batch ran to its end
        assert all(t["text"] for t in out["translations"])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
