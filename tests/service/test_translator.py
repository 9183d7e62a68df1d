"""The Translator on a tiny real checkpoint: units decoded by translate_ids, joined back line by line."""

from pathlib import Path

import pytest

from translate.engines import EngineError
from translate.models.checkpoint import load_model
from translate.search import SearchConfig, translate_ids
from translate.service import ServiceConfig, Translator, data_languages

pytestmark = pytest.mark.usefixtures("one_thread")
SEARCH = SearchConfig(beam_size=3, nbest=2, max_len_a=0.0, max_len_b=5)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, tiny_checkpoint) -> Path:
    tmp = tmp_path_factory.mktemp("translator")
    return tiny_checkpoint(tmp / "best.pt", "transformer", tmp / "cache")


def test_lines_are_split_into_sentences_decoded_and_joined(ckpt):
    limit = 12
    tr = Translator.load(ckpt, service=ServiceConfig(max_src_len=limit))
    lines = ["Dios es amor. La luz es buena y el agua es buena, y la tierra es buena.", "", "  Amén."]
    model, tok, _ = load_model(ckpt)
    sents = ["Dios es amor.", "La luz es buena y el agua es buena, y la tierra es buena.", "Amén."]
    p = tr.plan(lines)
    assert p.sentences == [sents[:2], [], sents[2:]] and p.cut_sentences == 1
    for sent, units in zip(sents, [u for line in p.layout for u in line]):  # nothing dropped, all fit
        assert sum((p.units[u] for u in units), []) == tok.encode(sent, "src")
        assert all(len(p.units[u]) <= limit for u in units)
    assert len(p.layout[0][1]) > 1
    hyps = translate_ids(model, p.units, SEARCH)
    texts = [[tok.decode(h.tokens, "tgt").strip() for h in nb] for nb in hyps]
    out = tr.translate(lines, SEARCH)
    for n in range(2):
        first = " ".join(t[n] for t in texts[:-1] if t[n])
        assert out[0][n] == first
        assert out[2][n] == ("  " + texts[-1][n] if texts[-1][n] else "")
    assert out[1] == ["", ""]


def test_languages_come_from_the_checkpoint(ckpt):
    assert Translator.load(ckpt).langs.src == "es"
    assert data_languages({"src_lang": "en", "tgt_lang": "fr"}).tgt == "fr"
    for says_nothing in (None, {}, {"src_lang": "en"}):  # a checkpoint that does not say: refused
        with pytest.raises(EngineError, match="names no (src_lang or )?tgt_lang"):
            data_languages(says_nothing)
