"""Lexically constrained beam search (dynamic beam allocation): every term appears, sentences without terms
decode as plain beam search, and with an exhaustive check on a tiny model."""

import itertools

import pytest
import torch

from tests.search.test_search import CONTENT, SRC, ToySeq2Seq, sequence_logprob
from translate.search import SearchConfig, beam_search, decode, translate_ids
from translate.search.beam import length_penalty
from translate.search.constrained import Progress, Term, constrained_beam_search

pytestmark = pytest.mark.usefixtures("one_thread")

SEARCH = SearchConfig(beam_size=4, nbest=1, alpha=0.6, max_len_a=0.0, max_len_b=8)


def contains(tokens, term):
    return any(tokens[i : i + len(term)] == term for i in range(len(tokens) - len(term) + 1))


def test_progress_follows_a_phrase_and_abandons_it():
    cons = [[3, 4], [5]]
    p = Progress((False, False))
    assert p.allowed(cons) == [3, 5]
    p = p.advance(3, cons)
    assert (p.current, p.done, p.covered(cons), p.allowed(cons)) == (0, 1, 1, [4])
    assert p.advance(2, cons) == Progress((False, False))  # abandoned: counts nothing
    assert p.advance(5, cons) == Progress((False, True), just_met=1)  # abandoned, and the other term met
    p = p.advance(4, cons)
    assert p == Progress((True, False), just_met=0) and p.covered(cons) == 2 and not p.complete
    assert p.advance(2, cons) == Progress((True, False))
    assert p.advance(5, cons).complete


def test_every_term_appears():
    model = ToySeq2Seq(sharpness=1.0)
    cons = [[[4, 5]], [[1]], [[4], [5, 1]], []]
    hyps = constrained_beam_search(model, SRC[:4], SEARCH, cons)
    for nb, terms in zip(hyps, cons):
        for term in terms:
            assert contains(nb[0].tokens, term)


def test_sentences_without_terms_decode_as_plain_beam_search():
    model = ToySeq2Seq(sharpness=1.0)
    cons = [[[4, 5]], [], [[1]], []]
    plain = beam_search(model, SRC, SEARCH)
    with_terms = decode(model, SRC, SEARCH, constraints=cons)
    for i, terms in enumerate(cons):
        if not terms:
            assert with_terms[i][0].tokens == plain[i][0].tokens
            assert with_terms[i][0].score == pytest.approx(plain[i][0].score)
    assert decode(model, SRC, SEARCH, constraints=[[]] * SRC.size(0))[0][0].tokens == plain[0][0].tokens


def test_a_wide_beam_finds_the_best_constrained_sequence():
    """Enumerate every sequence of up to 4 content tokens: the best one holding the term, by the
    GNMT score, is what a wide constrained beam returns."""
    model = ToySeq2Seq(sharpness=1.0)
    search = SearchConfig(beam_size=16, nbest=1, alpha=0.6, max_len_a=0.0, max_len_b=4)
    term = [5, 4]
    for row in range(3):
        src = SRC[row : row + 1]
        best, best_seq = float("-inf"), None
        for n in range(0, 5):
            for seq in itertools.product(CONTENT, repeat=n):
                seq = list(seq)
                if not contains(seq, term):
                    continue
                score = sequence_logprob(model, src[0], seq) / length_penalty(n + 1, 0.6)
                if score > best:
                    best, best_seq = score, seq
        found = constrained_beam_search(model, src, search, [[term]])[0][0]
        assert found.tokens == best_seq
        assert found.score == pytest.approx(best, abs=1e-4)


def test_translate_ids_takes_constraints_and_refuses_them_without_beam():
    model = ToySeq2Seq(sharpness=1.0)
    ids = [[3, 4], [5, 5, 3]]
    out = translate_ids(model, ids, SEARCH, constraints=[[[5, 4]], [[1]]])
    assert contains(out[0][0].tokens, [5, 4]) and contains(out[1][0].tokens, [1])
    with pytest.raises(ValueError, match="beam search"):
        translate_ids(model, ids, SearchConfig(beam_size=1), constraints=[[[5]], []])


def test_the_limit_makes_room_for_the_terms_and_a_term_past_the_positions_falls_back(caplog):
    model = ToySeq2Seq(sharpness=1.0)
    search = SearchConfig(beam_size=3, nbest=1, max_len_a=0.0, max_len_b=2)
    out = constrained_beam_search(model, SRC[:1], search, [[[4, 5, 1]]])
    assert out[0][0].tokens == [4, 5, 1] and not caplog.text  # the limit 2 is raised to the term's 3 tokens
    model.max_positions = 3  # targets of at most 2 tokens: the term cannot fit
    out = constrained_beam_search(model, SRC[:1], search, [[[4, 5, 1]]])
    assert len(out[0][0].tokens) <= 2 and torch.isfinite(torch.tensor(out[0][0].score))
    assert "holds every glossary term" in caplog.text


def test_no_piece_glues_onto_a_finished_term():
    """A Term's no_follow ids never come right after it (the glossary bans pieces continuing its word)."""
    model = ToySeq2Seq(sharpness=3.0, seed=5)  # loops on token 4: "5 4 4 4 ..." without the ban
    search = SearchConfig(beam_size=3, nbest=1, max_len_a=0.0, max_len_b=6)
    free = constrained_beam_search(model, SRC, search, [[[5]]] * SRC.size(0))
    banned = constrained_beam_search(model, SRC, search, [[Term([5], no_follow=[4])]] * SRC.size(0))
    outs = [nb[0].tokens for nb in banned]
    follows = [t[t.index(5) + 1] for t in outs if 5 in t and t.index(5) + 1 < len(t)]
    assert 4 not in follows
    assert any(t[t.index(5) + 1 :][:1] == [4] for t in (nb[0].tokens for nb in free) if 5 in t)
