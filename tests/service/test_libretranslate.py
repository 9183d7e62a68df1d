"""LibreTranslate parity on 127.0.0.1: its clients (libretranslatepy, deep-translator), request parsing as
LibreTranslate's app.py does it (JSON, form, multipart, query string), /detect and source "auto", API keys
and limits, /frontend/settings, and CORS."""

from __future__ import annotations

import json
import urllib.parse
import uuid
from contextlib import contextmanager

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve]'")

from tests.service.live import TINY_SEARCH, call, start, stop  # noqa: E402
from translate.service import ServerConfig  # noqa: E402

SPANISH = "Dios es amor. La luz es buena y el agua es buena."
FRENCH = "Le chat dort sur la chaise de la cuisine."


def offline(live, text: str) -> str:
    return "\n".join(line[0] for line in live.translator.translate(text.split("\n"), TINY_SEARCH))


def sentences(url: str, model: str) -> float:
    _, _, text = call(url, "/metrics")
    name = f'translate_sentences_total{{model="{model}"}} '
    return float(next(line.split()[-1] for line in text.splitlines() if line.startswith(name)))


@contextmanager
def server(live, **changes):
    """A second app over the same checkpoint (its own workers: its shutdown stops them) with `changes`."""
    from translate.service.app import Served, create_app
    from translate.service.worker import Worker

    config = ServerConfig(**{"char_limit": 2000, "max_queue": 64, "timeout": 30.0, **changes})
    served = {name: Served(name, s.translator, Worker(s.translator.model, config).start(), s.search)
              for name, s in live.served.items() if name in ("tiny", "fr")}  # fmt: skip
    app_server, url = start(create_app(served, config))
    try:
        yield url
    finally:
        stop(app_server)


def raw(url: str, path: str, data: bytes | None, headers: dict, method: str = "POST"):
    import urllib.request

    req = urllib.request.Request(url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def multipart(fields: dict[str, str]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = '--{}\r\nContent-Disposition: form-data; name="{}"\r\n\r\n{}\r\n'
    parts = [head.format(boundary, k, v) for k, v in fields.items()]
    return ("".join(parts) + f"--{boundary}--\r\n").encode(), f"multipart/form-data; boundary={boundary}"


# ------------------------------------------------------------------------------------------- the clients


def test_libretranslatepy_translates_detects_and_lists_languages(live):
    lt = pytest.importorskip("libretranslatepy").LibreTranslateAPI(live.url)
    assert lt.translate(SPANISH, "es", "en") == offline(live, SPANISH)
    found = lt.detect(SPANISH)
    assert found[0]["language"] == "es" and 50 < found[0]["confidence"] <= 100
    assert {f["language"] for f in found} <= {"es", "fr", "en"}  # only languages the server has models for
    assert lt.detect(FRENCH)[0]["language"] == "fr"
    assert [lang["code"] for lang in lt.languages()] == ["en", "es", "fr"]


def test_deep_translator_sends_its_fields_in_the_query_string(live):
    deep = pytest.importorskip("deep_translator")
    tr = deep.LibreTranslator(source="es", target="en", api_key="unused", custom_url=live.url + "/")
    assert tr.translate(SPANISH) == offline(live, SPANISH)  # POST /translate?q=...&source=es with no body


# ------------------------------------------------------------------------------- parsing as LibreTranslate


def test_json_form_multipart_and_query_string_give_the_same_answer(live):
    fields = {"q": SPANISH, "source": "es", "target": "en"}
    want = offline(live, SPANISH)
    assert call(live.url, "/translate", fields)[2]["translatedText"] == want
    form = urllib.parse.urlencode(fields).encode()
    status, _, out = raw(live.url, "/translate", form, {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and json.loads(out)["translatedText"] == want
    body, kind = multipart(fields)  # curl -F q=... -F source=es ...
    status, _, out = raw(live.url, "/translate", body, {"Content-Type": kind})
    assert status == 200 and json.loads(out)["translatedText"] == want
    status, _, out = raw(live.url, "/translate?" + urllib.parse.urlencode(fields), b"", {})
    assert status == 200 and json.loads(out)["translatedText"] == want


@pytest.mark.parametrize("fmt", [None, "", "text"])
def test_format_null_or_empty_means_text(live, fmt):
    body = {"q": SPANISH, "source": "es", "target": "en", "format": fmt}
    status, _, out = call(live.url, "/translate", body)
    assert status == 200 and out["translatedText"] == offline(live, SPANISH)


@pytest.mark.parametrize(
    "changes,words",
    [({"format": "xml"}, "format must be"), ({"alternatives": "two"}, "alternatives must be an integer"),
     ({"alternatives": 99}, "alternatives must be at most"), ({"q": ["a", 3]}, "q must be a string")],
)  # fmt: skip
def test_bad_fields_are_400s_that_name_the_field(live, changes, words):
    status, _, out = call(live.url, "/translate", {"q": SPANISH, "source": "es", "target": "en", **changes})
    assert status == 400 and words in out["error"]


def test_text_without_letters_comes_back_as_it_is_and_suggest_is_off(live):
    body = {"q": ["🙂 123", SPANISH], "source": "es", "target": "en", "alternatives": 1}
    status, _, out = call(live.url, "/translate", body)
    assert status == 200 and out["translatedText"][0] == "🙂 123" and out["alternatives"][0] == []
    assert out["translatedText"][1] == offline(live, SPANISH)
    status, _, out = call(live.url, "/suggest", {"q": "a", "s": "b", "source": "es", "target": "en"})
    assert (status, out) == (403, {"error": "Suggestions are disabled on this server."})


def test_alternatives_below_zero_count_as_zero(live):
    body = {"q": SPANISH, "source": "es", "target": "en", "alternatives": -1}
    status, _, out = call(live.url, "/translate", body)
    assert status == 200 and "alternatives" not in out and out["translatedText"] == offline(live, SPANISH)


# ------------------------------------------------------------------------------------ detection and auto


def test_auto_with_a_list_detects_each_text_and_sends_it_to_its_model(live):
    before = sentences(live.url, "fr"), sentences(live.url, "tiny")
    status, _, out = call(live.url, "/translate", {"q": [SPANISH, FRENCH], "source": "auto", "target": "en"})
    assert status == 200 and [d["language"] for d in out["detectedLanguage"]] == ["es", "fr"]
    assert all(0 < d["confidence"] <= 100 for d in out["detectedLanguage"])
    assert sentences(live.url, "fr") == before[0] + 1  # the French sentence went to the fr model
    assert sentences(live.url, "tiny") >= before[1] + 2  # (another test's live requests may add more)
    assert out["translatedText"][0] == offline(live, SPANISH)


def test_detect_a_list_ranks_the_languages_of_all_texts_together(live):
    status, _, out = call(live.url, "/detect", {"q": [SPANISH, SPANISH, FRENCH]})
    assert status == 200 and [d["language"] for d in out][:2] == ["es", "fr"]
    status, _, out = call(live.url, "/detect", {"q": "12345 :)"})
    assert status == 200 and out == [{"language": "en", "confidence": 0.0}]  # LibreTranslate's "none found"
    assert call(live.url, "/detect", {"text": "x"})[0] == 400


# ----------------------------------------------------------------------------------- API keys and limits


def test_api_keys_are_required_checked_and_limited(live, tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("# key  requests/minute  chars\nopen\nslow 2\nshort 100 10\n")
    body = {"q": "Dios.", "source": "es", "target": "en"}
    with server(live, api_keys=str(keys), require_api_key=True) as url:
        status, _, out = call(url, "/translate", body)
        assert status == 400 and out["error"] == "Please contact the server operator to get an API key"
        status, _, out = call(url, "/translate", {**body, "api_key": "nope"})
        assert (status, out["error"]) == (403, "Invalid API key")
        assert call(url, "/detect", {"q": "Hola"})[0] == 400  # /detect is checked as well
        assert call(url, "/v1/translate", {"q": "Hola"})[0] == 400  # and our own API
        assert call(url, "/v1/translate", {"q": "Hola", "model": "tiny", "api_key": "open"})[0] == 200
        assert call(url, "/translate", {**body, "api_key": "open"})[0] == 200
        assert call(url, "/translate", {**body, "api_key": "slow"})[0] == 200
        status, _, out = call(url, "/translate", {**body, "q": ["Uno.", "Dos."], "api_key": "slow"})
        assert status == 429 and out["error"] == "Slowdown: 2 per 1 minute"  # a batch costs its length
        assert call(url, "/translate", {**body, "api_key": "slow"})[0] == 200  # the second of two
        assert call(url, "/translate", {**body, "api_key": "slow"})[0] == 429
        status, _, out = call(url, "/translate", {**body, "q": "Dios es amor.", "api_key": "short"})
        assert status == 413 and "limit of 10" in out["error"]  # the key's own char limit
        _, _, settings = call(url, "/frontend/settings")
        assert settings["apiKeys"] is True and settings["keyRequired"] is True


def test_req_limit_by_address_and_batch_limit(live):
    body = {"q": "Dios.", "source": "es", "target": "en"}
    with server(live, req_limit=3, batch_limit=2) as url:
        status, _, out = call(url, "/translate", {**body, "q": ["a", "b", "c"]})
        assert status == 413 and "batch limit of 2" in out["error"]
        assert [call(url, "/translate", body)[0] for _ in range(4)] == [200, 200, 200, 429]
        assert call(url, "/languages")[0] == 200  # only translating and detecting count


def test_keys_file_errors_name_the_file_and_line(tmp_path):
    from translate.service.access import ApiKeysError, load_api_keys

    bad = tmp_path / "keys.txt"
    bad.write_text("good 10\nbad -3\n")
    with pytest.raises(ApiKeysError, match=r"keys.txt:2: expected KEY \[REQ_LIMIT"):
        load_api_keys(bad)
    bad.write_text("a\na\n")
    with pytest.raises(ApiKeysError, match="keys.txt:2: the key 'a' is given twice"):
        load_api_keys(bad)
    with pytest.raises(ApiKeysError, match="cannot read"):
        load_api_keys(tmp_path / "missing.txt")


def test_the_rate_window_slides():
    from translate.service.access import RateLimiter

    limiter = RateLimiter(window=60.0)
    assert limiter.take("a", 2, 3, now=0.0) and limiter.take("a", 1, 3, now=10.0)
    assert not limiter.take("a", 1, 3, now=59.0) and limiter.take("b", 3, 3, now=59.0)
    assert limiter.take("a", 2, 3, now=60.5)  # the first two fell out of the window


def test_serve_flags_for_access_are_checked():
    from translate import serve

    with pytest.raises(SystemExit):
        serve.parse(["--require-api-key"])  # without --api-keys
    with pytest.raises(SystemExit):
        serve.parse(["--cors-origins", "example.org"])
    _, config, _, _ = serve.parse(["--cors-origins", "*", "--req-limit", "5", "--api-keys", "k.txt"])
    assert config.cors_origins == ("*",) and config.req_limit == 5 and config.api_keys == "k.txt"


def test_frontend_settings_have_libretranslates_fields(live):
    status, _, out = call(live.url, "/frontend/settings")
    assert status == 200
    assert set(out) == {"charLimit", "frontendTimeout", "apiKeys", "keyRequired", "suggestions",
                        "filesTranslation", "supportedFilesFormat", "language"}  # fmt: skip
    assert out["charLimit"] == 2000 and out["apiKeys"] is False
    assert out["language"] == {"source": {"code": "auto", "name": "Auto Detect"},
                               "target": {"code": "en", "name": "English"}}  # fmt: skip


# ------------------------------------------------------------------------------------------------ CORS


def test_no_cors_headers_by_default(live):
    status, headers, _ = raw(live.url, "/languages", None, {"Origin": "https://elsewhere.example"}, "GET")
    assert status == 200 and "access-control-allow-origin" not in {k.lower() for k in headers}
    post = {"Origin": "https://elsewhere.example", "Content-Type": "application/json"}
    body = json.dumps({"q": "Dios.", "source": "es", "target": "en"}).encode()
    assert raw(live.url, "/translate", body, post)[0] == 403  # and another site's page cannot POST (guard.py)


def test_cors_star_as_libretranslate_and_preflight(live):
    with server(live, cors_origins=("*",)) as url:
        status, headers, _ = raw(url, "/languages", None, {"Origin": "https://elsewhere.example"}, "GET")
        assert status == 200 and headers["access-control-allow-origin"] == "*"
        preflight = {"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "content-type"}  # fmt: skip
        status, headers, _ = raw(url, "/translate", None, preflight, "OPTIONS")
        assert status == 200 and "POST" in headers["access-control-allow-methods"]
        assert "content-type" in headers["access-control-allow-headers"].lower()
        post = {"Origin": "https://elsewhere.example", "Content-Type": "application/json"}
        body = json.dumps({"q": "Dios.", "source": "es", "target": "en"}).encode()
        status, headers, out = raw(url, "/translate", body, post)  # the browser's request after the preflight
        assert status == 200 and headers["access-control-allow-origin"] == "*" and "translatedText" in out
    with server(live, cors_origins=("https://mine.example",)) as url:
        status, _, _ = raw(url, "/translate", None, preflight, "OPTIONS")
        assert status == 400  # another origin's preflight is refused
        headers = raw(url, "/languages", None, {"Origin": "https://mine.example"}, "GET")[1]
        assert headers["access-control-allow-origin"] == "https://mine.example"


@pytest.mark.parametrize("path,body", [
    ("/detect", {"q": None}), ("/detect", {"q": {"a": 1}}), ("/detect", {"q": 1e308}),
    ("/detect", {"q": [["nested"]]}), ("/detect", {"q": "x" * 5000}), ("/detect", {"q": [SPANISH] * 500}),
    ("/detect", {"q": SPANISH, "api_key": ["k"]}), ("/detect", {"q": True}),
    ("/translate", {"q": SPANISH, "source": ["es"], "target": "en"}),
    ("/translate", {"q": SPANISH, "source": "es", "target": None, "format": 5}),
    ("/translate", {"q": SPANISH, "source": "es", "target": "en", "glossary": {"Dios": 5}}),
    ("/translate", {"q": SPANISH, "source": "es", "target": "en", "glossary": "not json"}),
    ("/translate_file", {"source": "es", "target": "en"}),
])  # fmt: skip
def test_hostile_detect_translate_and_file_fields_are_4xx_and_harm_no_later_request(live, path, body):
    status, _, out = call(live.url, path, body)
    assert 400 <= status < 500 and isinstance(out, dict) and set(out) == {"error"}, (status, out)
    status, _, out = call(live.url, "/detect", {"q": SPANISH})
    assert status == 200 and out[0]["language"] == "es"
    status, _, out = call(live.url, "/translate", {"q": SPANISH, "source": "es", "target": "en"})
    assert status == 200 and out["translatedText"] == offline(live, SPANISH)
