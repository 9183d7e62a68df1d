"""Beam search's chunked top-k against the plain topk over all K x V sums: the same values and indices."""

import pytest
import torch

import translate.search.beam as beam_module
from tests.search.test_search import ToySeq2Seq, make_src
from translate.search import SearchConfig, beam_search
from translate.search.topk import CHUNK, candidates_topk, candidates_topk_reference, chunk_size

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
