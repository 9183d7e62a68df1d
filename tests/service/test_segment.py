"""Text to units and back: lines, pysbd sentences, over-long sentences cut at their best split points."""

import pytest

from translate.service.segment import blocks, boundary_rank, cut, cut_points, plan, split_sentences


class WordTokenizer:
    """One piece per whitespace word (with SentencePiece's word-start mark), ids = running numbers."""

    def __init__(self):
        self.vocab = {}

    def encode_pieces(self, text, side):
        return ["\u2581" + w for w in text.split()]

    def encode(self, text, side):
        return [self.vocab.setdefault(p, len(self.vocab) + 4) for p in self.encode_pieces(text, side)]


def test_spanish_sentences():
    text = "Y dijo Dios: Sea la luz. Y fue la luz. ¿Qué dijo? ¡Nada!"
    want = ["Y dijo Dios: Sea la luz.", "Y fue la luz.", "¿Qué dijo?", "¡Nada!"]
    assert split_sentences(text, "es") == want
    assert split_sentences("   ", "es") == []


def test_sentences_of_concurrent_texts_do_not_mix():
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"Texto {i}. Dice {i} cosas. Fin {i}." for i in range(200)]
    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda t: split_sentences(t, "es"), texts))
    assert found == [[f"Texto {i}.", f"Dice {i} cosas.", f"Fin {i}."] for i in range(200)]


def test_long_lines_reach_pysbd_in_blocks_cut_at_sentence_ends():
    text = "Uno dos tres. " * 300  # 4,200 characters
    parts = blocks(text, 2000)
    assert "".join(parts) == text and all(len(p) <= 2000 for p in parts) and len(parts) == 3
    assert all(p.endswith(". ") for p in parts[:-1])
    words = "palabra " * 600  # no sentence end: cut at a space
    assert all(p.endswith(" ") for p in blocks(words, 2000)[:-1]) and "".join(blocks(words, 2000)) == words
    assert blocks("x" * 4500, 2000) == ["x" * 2000, "x" * 2000, "x" * 500]
    assert len(split_sentences(text, "es")) == 300


def test_boundary_ranks():
    assert boundary_rank("\u2581luz.", "\u2581Y") == 3
    assert boundary_rank("\u2581Dios,", "\u2581y") == 2
    assert boundary_rank("\u2581Dios", "\u2581y") == 1
    assert boundary_rank("\u2581Di", "os") == 0


def test_cut_prefers_punctuation_near_the_middle_and_keeps_every_id():
    pieces = ["\u2581" + w for w in "uno dos tres, cuatro cinco seis siete ocho nueve diez".split()]
    assert cut_points(pieces, 8) == [3]  # after the comma, not at the even split (5)
    ids = list(range(len(pieces)))
    parts = cut(ids, pieces, 8)
    assert [len(p) for p in parts] == [3, 7] and sum(parts, []) == ids


@pytest.mark.parametrize("n,limit", [(1, 1), (7, 3), (40, 7), (41, 40), (100, 9)])
def test_cut_parts_never_exceed_the_limit_and_lose_nothing(n, limit):
    pieces = ["\u2581w" if i % 3 == 0 else "x" for i in range(n)]  # words of three pieces, no punctuation
    parts = cut(list(range(n)), pieces, limit)
    assert sum(parts, []) == list(range(n))
    assert all(1 <= len(p) <= limit for p in parts)
    if limit < 3:  # words do not fit: as few parts as the limit allows
        assert len(parts) == -(-n // limit)
    else:  # whole words fit: no cut inside a word, and few parts even so
        assert len(parts) <= -(-n // (limit - 2))
        assert all(pieces[sum(len(p) for p in parts[:i])].startswith("\u2581") for i in range(1, len(parts)))


def test_plan_keeps_line_structure_and_joins_back():
    tok = WordTokenizer()
    long = "uno dos tres, cuatro cinco seis siete ocho nueve diez"
    lines = ["  Sea la luz. Y fue la luz.", "", long, "   "]
    p = plan(lines, tok, "es", limit=8)
    assert p.sentences[0] == ["Sea la luz.", "Y fue la luz."] and p.sentences[1] == []
    assert [len(u) for u in p.units] == [3, 4, 3, 7] and p.cut_sentences == 1
    assert p.layout == [[[0], [1]], [], [[2, 3]], []]
    assert p.join(["A", "B ", "C", "D"]) == ["  A B", "", "C D", ""]
