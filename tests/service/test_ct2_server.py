"""`translate serve` with a CTranslate2 export: the server loads the directory, CTranslate2 decodes
(batching what is queued), and the answers are the CTranslate2 engine's own, through the real
libretranslatepy client and /v1/translate on 127.0.0.1."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.service.live import TINY_SEARCH, call, start, stop
from translate.engines import EngineError
from translate.service import ServerConfig, ServiceConfig, Translator

ctranslate2 = pytest.importorskip("ctranslate2")

SOURCES = ["Dios es amor.", "En el principio creó Dios los cielos y la tierra.", "La luz.", "Y dijo Dios."]


@pytest.fixture(scope="module")
def exported(served_ckpt, tmp_path_factory):
    from translate.engines.ct2_export import export_ct2

    return export_ct2(served_ckpt, tmp_path_factory.mktemp("ct2") / "tiny-ct2", quantization="float32")


@pytest.fixture(scope="module")
def ct2_live(served_ckpt, exported):
    from translate.serve import load_served
    from translate.service.app import create_app

    config = ServerConfig(char_limit=2000, max_queue=64, timeout=30.0)  # scheduler: continuous (the default)
    served = load_served([["ct2", str(exported)], ["torch", str(served_ckpt)]], "cpu", config, TINY_SEARCH,
                         ServiceConfig(), threads=1)  # fmt: skip
    server, url = start(create_app(served, config))
    yield url, served
    stop(server)
    for s in served.values():
        s.worker.stop(timeout=10)


def test_a_directory_is_served_by_ctranslate2_with_static_batching(ct2_live):
    _, served = ct2_live
    ct2, torch_model = served["ct2"], served["torch"]
    assert ct2.translator.engine.name == "ct2" and ct2.translator.model is None
    assert ct2.worker.config.scheduler == "static"  # continuous batching needs our step interface
    assert torch_model.translator.engine.name == "torch"
    assert torch_model.worker.config.scheduler == "continuous"


def test_answers_are_the_ct2_engines_own_under_concurrent_clients(ct2_live, exported):
    url, _ = ct2_live
    offline = Translator.load(exported, engine="ct2", threads=1)
    want = [offline.translate([s], TINY_SEARCH)[0][0] for s in SOURCES]
    lt = pytest.importorskip("libretranslatepy").LibreTranslateAPI(url)
    with ThreadPoolExecutor(4) as pool:  # 4 clients at once, 16 requests
        got = list(pool.map(lambda i: lt.translate(SOURCES[i % 4], "es", "en"), range(16)))
    assert got == [want[i % 4] for i in range(16)]

    request = {"q": SOURCES[1], "model": "ct2", "nbest": 2, "alignment": True}
    status, _, body = call(url, "/v1/translate", request)
    assert status == 200
    assert body["translations"]["text"] == want[1]
    hyps = body["translations"]["units"][0]["hypotheses"]
    assert len(hyps) == 2 and hyps[0]["score"] >= hyps[1]["score"]
    assert "alignment" not in hyps[0] or hyps[0]["alignment"] is None  # CTranslate2 gives no alignment here
    status, _, models = call(url, "/v1/models")
    description = {m["name"]: m["description"] for m in models}
    assert description["ct2"].startswith("CTranslate2 Transformer")
    assert str(exported) not in description["ct2"]  # no server paths in the API


def test_quantize_is_refused_for_a_directory(exported, caplog):
    from translate.serve import load_served

    with caplog.at_level(logging.INFO), pytest.raises(EngineError, match="--quantize applies to checkpoints"):
        load_served([["x", str(exported)]], "cpu", ServerConfig(), TINY_SEARCH, ServiceConfig(), "int8")


def test_an_engine_cannot_be_scheduled_continuously(exported):
    from translate.service.worker import Worker

    engine = Translator.load(exported, engine="ct2", threads=1).engine
    with pytest.raises(ValueError, match="continuous needs a model"):
        Worker(None, ServerConfig(scheduler="continuous"), engine=engine)


def test_html_through_ctranslate2_keeps_its_markup_by_the_diagonal(ct2_live, exported):
    """CTranslate2 gives no alignment here: inline elements follow the diagonal (service/html.py)."""
    from translate.service.html import diagonal, parse

    url, _ = ct2_live
    want = Translator.load(exported, engine="ct2", threads=1).translate([SOURCES[1]], TINY_SEARCH)[0][0]
    html = "<p>En el principio <b>creó</b> Dios los cielos y la tierra.</p>"
    status, _, out = call(url, "/translate", {"q": html, "source": "es", "target": "en", "format": "html"})
    assert status == 200
    p = parse(out["translatedText"]).find("p")
    assert " ".join(p.get_text().split()) == " ".join(want.split())
    target = want.split()
    T = len(target)
    chosen = [t for t in range(T) if diagonal(t, T, 10) == 3] or [diagonal(3, 10, T)]  # "creó": word 3 of 10
    assert p.find("b").get_text().split() == target[min(chosen) : max(chosen) + 1]
