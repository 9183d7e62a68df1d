"""`translate serve --model es-en=imported.pt` on an imported Marian model: continuous batching over the paged
KV cache (the server's defaults), /languages from the model's pair, answers equal to offline decoding, and
the alignment the web page draws."""

from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve]'")
pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install -e '.[serve]'")
pytest.importorskip("transformers")

from tests.models.marian_tiny import build_tiny_marian, fixture_pairs  # noqa: E402
from tests.service.live import call, start, stop  # noqa: E402
from translate.importer import main as import_main  # noqa: E402
from translate.search import SearchConfig  # noqa: E402
from translate.service import ServerConfig, ServiceConfig  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def test_an_imported_marian_model_is_served_with_continuous_batching(tmp_path):
    from translate.serve import load_served
    from translate.service.app import create_app

    directory = build_tiny_marian(tmp_path / "opus-mt-tiny", layers=1)
    ckpt = tmp_path / "es-en.pt"
    assert import_main(["marian", str(directory), "-o", str(ckpt)]) == 0
    config = ServerConfig(max_queue=64, timeout=60.0)
    assert (config.scheduler, config.kv_cache) == ("continuous", "paged")
    search = SearchConfig(beam_size=2, max_len_a=0.0, max_len_b=8)
    served = load_served([["es-en", str(ckpt)]], "cpu", config, search, ServiceConfig())
    server, url = start(create_app(served, config))
    try:
        status, _, langs = call(url, "/languages")
        assert status == 200
        assert {e["code"]: e["targets"] for e in langs} == {"es": ["en"], "en": []}
        texts = [s for s, _ in fixture_pairs("dev")[:8]]
        translator = served["es-en"].translator
        def ask(q):
            return call(url, "/translate", {"q": q, "source": "es", "target": "en"})

        with ThreadPoolExecutor(8) as pool:  # 8 clients at once: they share the running batch
            answers = list(pool.map(ask, texts))
        assert [a[0] for a in answers] == [200] * len(texts)
        want = [line[0] for line in translator.translate(texts, search)]
        assert [a[2]["translatedText"] for a in answers] == want
        # the web page's alignment: the cross-attention over the shared vocabulary's pieces
        status, _, out = call(url, "/v1/translate", {"q": "Dios es amor.", "alignment": True, "beam": 1})
        assert status == 200 and out["source"] == "es" and out["target"] == "en"
        hyp = out["translations"]["units"][0]["hypotheses"][0]
        grid = hyp["alignment"]
        assert grid["source"][-1] == "</s>" and len(grid["weights"]) == hyp["length"] + 1
        assert all(abs(sum(row) - 1) < 1e-3 for row in grid["weights"])
    finally:
        stop(server)
        for s in served.values():
            s.worker.stop()
