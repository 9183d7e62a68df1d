"""Beam search's chunked top-k against the plain topk over all K x V sums: the same values and indices."""

import pytest
import torch

import translate.search.beam as beam_module
from tests.search.test_search import ToySeq2Seq, make_src
from translate.search import SearchConfig, beam_search
from translate.search.topk import (
    CHUNK,
    argmax,
    argmax_reference,
    candidates_topk,
    candidates_topk_reference,
    chunk_size,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def same(a, b):
    """Values equal as floats (NaN equal to NaN), indices equal."""
    assert torch.equal(a[0].nan_to_num(-7.0), b[0].nan_to_num(-7.0))
    assert torch.equal(a[1], b[1])


@pytest.mark.parametrize("B,K,V", [(3, 5, 8000), (2, 2, 640), (4, 1, 1024), (1, 8, 96 * 70)])
def test_the_same_candidates_as_the_plain_topk(B, K, V):
    logp = torch.randn(B, K, V).log_softmax(-1)
    scores = torch.randn(B, K) * 3
    assert chunk_size(V, 2 * K, K) is not None  # the chunked path runs
    same(candidates_topk(scores, logp, 2 * K), candidates_topk_reference(scores, logp, 2 * K))


def test_dead_beams_masked_tokens_and_nan_rows():
    """First-step scores (only beam 0 alive), rows that may only end (-inf but EOS), a NaN row."""
    B, K, V = 3, 5, 8000
    logp = torch.randn(B, K, V).log_softmax(-1)
    scores = torch.randn(B, K)
    scores[0, 1:] = float("-inf")  # a new sentence: beams 1.. dead
    logp[1, :, 1:] = float("-inf")  # every beam of sentence 1 can only pick token 0
    logp[2, 3] = float("nan")  # broken logits in one beam
    fast, ref = candidates_topk(scores, logp, 2 * K), candidates_topk_reference(scores, logp, 2 * K)
    (fast_v, fast_i), (ref_v, ref_i) = fast, ref
    assert torch.equal(fast_v[0], ref_v[0]) and torch.equal(fast_i[0], ref_i[0])
    finite = ref_v[1].isfinite()  # K finite candidates; which -inf ones fill the rest is arbitrary
    assert torch.equal(fast_v[1], ref_v[1])
    assert torch.equal(fast_i[1][finite], ref_i[1][finite])
    assert (fast_i[1] < K * V).all() and (fast_i[1] >= 0).all()
    assert fast_v[2].isnan().sum() == ref_v[2].isnan().sum() > 0  # NaNs rank first in both


def test_shapes_without_a_chunk_take_the_plain_topk():
    assert chunk_size(7919, 10, 5) is None  # prime: no divisor near CHUNK
    assert chunk_size(200, 10, 5) is None  # 40, 50 or 100 tokens a chunk: too few chunks to pay
    assert chunk_size(8000, 10, 5) == CHUNK
    logp, scores = torch.randn(2, 5, 7919).log_softmax(-1), torch.randn(2, 5)
    same(candidates_topk(scores, logp, 10), candidates_topk_reference(scores, logp, 10))


@pytest.mark.parametrize("guard", [0, 3])
def test_beam_search_finds_the_same_hypotheses(monkeypatch, guard):
    model = ToySeq2Seq(vocab=512, dim=16, sharpness=6.0)
    src = make_src([[4, 5, 4], [5], [4, 4, 5, 5, 4, 7, 9], [1, 4], [300, 200, 100]])
    search = SearchConfig(beam_size=5, nbest=3, repeat_guard=guard, max_len_b=12)
    fast = beam_search(model, src, search)
    monkeypatch.setattr(beam_module, "candidates_topk", candidates_topk_reference)
    ref = beam_search(model, src, search)
    assert [[(h.tokens, h.score) for h in s] for s in fast] == [[(h.tokens, h.score) for h in s] for s in ref]


@pytest.mark.parametrize("R,V", [(100, 8000), (1, 8000), (7, 640), (5, 96 * 70)])
def test_greedy_argmax_is_torchs(R, V):
    """The chunked arg-max returns torch's: random rows, exact ties (the first wins), a maximum at each end
    of a chunk, -inf rows, NaN rows (the first NaN, as torch's argmax)."""
    assert chunk_size(V, 1, 1) is not None  # the chunked path runs
    logits = torch.randn(R, V)
    assert torch.equal(argmax(logits), argmax_reference(logits))
    C = chunk_size(V, 1, 1)
    tied = torch.zeros(R, V)
    tied[:, [3, C - 1, C, V - 1]] = 5.0  # ties inside a chunk, across chunks, at the last index
    tied[0] = float("-inf")  # no finite token
    if R > 1:
        tied[1, [C + 2, 2 * C - 1]] = float("nan")  # NaN rows: the first NaN
        tied[-1, V - 1] = 9.0  # the maximum alone in the last chunk
    assert torch.equal(argmax(tied), argmax_reference(tied))


def test_greedy_argmax_keeps_torchs_for_other_shapes():
    odd = torch.randn(3, 1009)  # a prime vocabulary: no chunk size, torch's argmax
    assert chunk_size(1009, 1, 1) is None and torch.equal(argmax(odd), odd.argmax(-1))
    strided = torch.randn(8000, 4).t()  # not contiguous: torch's argmax
    assert torch.equal(argmax(strided), strided.argmax(-1))
