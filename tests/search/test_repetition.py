"""Repetition controls: no_repeat_ngram_size, repetition_penalty (CTranslate2's meanings) and repeat_guard, as
functions on logits and inside every strategy."""

import dataclasses

import pytest
import torch

from tests.search.test_search import SRC, ToySeq2Seq
from translate.data.vocab import EOS_ID
from translate.search import SearchConfig, beam_search, greedy_search, sample
from translate.search.config import REPETITION_OFF
from translate.search.repetition import block_ngrams, control_repetition, end_repeats, only_eos, repeated_tail

pytestmark = pytest.mark.usefixtures("one_thread")


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits_of_seen_tokens():
    logits = torch.tensor([[2.0, -1.0, 3.0, -2.0, 0.5]])
    history = torch.tensor([[0, 1, 4, 4]])
    out = control_repetition(logits, history, torch.tensor([2]), SearchConfig(repetition_penalty=2.0))
    assert out.tolist() == [[1.0, -2.0, 3.0, -2.0, 0.5]]  # tokens 0 and 1 seen; 4 is past the row's length


def test_no_repeat_ngram_bans_exactly_the_tokens_that_complete_a_seen_ngram():
    history = torch.tensor([[3, 4, 3, 5, 3, 0], [3, 4, 3, 5, 3, 0]])
    lengths = torch.tensor([5, 4])  # row 0 ends in 3: bigrams (3,4) (3,5) seen; row 1 ends in 5: (5,?) none
    out = block_ngrams(torch.zeros(2, 7), history, lengths, 2)
    assert torch.isinf(out[0]).nonzero().squeeze(1).tolist() == [4, 5]
    assert not torch.isinf(out[1]).any()
    out = block_ngrams(torch.zeros(2, 7), history, lengths, 1)  # unigrams: every generated token
    assert torch.isinf(out[0]).nonzero().squeeze(1).tolist() == [3, 4, 5]
    assert torch.isinf(out[1]).nonzero().squeeze(1).tolist() == [3, 4, 5]
    out = block_ngrams(torch.zeros(2, 7), history, lengths, 3)  # row 0 ends in (5, 3): never seen before
    assert not torch.isinf(out).any()


def test_repeated_tail_finds_copies_of_one_ngram():
    h = torch.tensor([[1, 7, 8, 7, 8, 7, 8], [1, 7, 7, 7, 2, 2, 2]])
    assert repeated_tail(h, torch.tensor([7, 7]), 3, 2).tolist() == [True, False]
    assert repeated_tail(h, torch.tensor([7, 4]), 3, 1).tolist() == [False, True]
    assert repeated_tail(h, torch.tensor([6, 7]), 3, 2).tolist() == [False, False]


def test_repeat_guard_leaves_only_eos_with_its_own_score():
    logp = torch.log_softmax(torch.randn(2, 6), -1)
    history = torch.tensor([[4, 4, 4], [4, 5, 4]])
    out = end_repeats(logp.clone(), history, torch.tensor([3, 3]), SearchConfig(repeat_guard=3))
    assert torch.isfinite(out[0]).nonzero().squeeze(1).tolist() == [EOS_ID]
    assert out[0, EOS_ID] == logp[0, EOS_ID]
    assert torch.equal(out[1], logp[1])


def has_run(tokens, copies, n_max=4):
    """Whether tokens hold `copies` consecutive copies of one n-gram (n <= n_max)."""
    for n in range(1, n_max + 1):
        for i in range(len(tokens) - copies * n + 1):
            gram = tokens[i : i + n]
            if all(tokens[i + c * n : i + (c + 1) * n] == gram for c in range(copies)):
                return True
    return False


def ngrams(tokens, n):
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
def test_every_strategy_obeys_the_controls(strategy):
    """A toy model that loops (a long limit) repeats without the controls and never with them."""
    model = ToySeq2Seq(sharpness=3.0, seed=5)
    base = dict(strategy=strategy, nbest=1, beam_size=3, max_len_a=0.0, max_len_b=30, seed=1)
    base.update(REPETITION_OFF)  # "free" is plain search

    def run(**kw):
        search = SearchConfig(**{**base, **kw})
        if strategy == "beam":
            return [h[0].tokens for h in beam_search(model, SRC, search)]
        return (greedy_search if strategy == "greedy" else sample)(model, SRC, search)

    free = run()
    assert any(has_run(t, 3) for t in free)  # the toy model does loop
    for tokens in run(no_repeat_ngram_size=2):
        assert len(set(ngrams(tokens, 2))) == len(ngrams(tokens, 2))
    for tokens in run(repeat_guard=3):
        assert not has_run(tokens[:-1], 3)  # the 3rd copy's last token is the last one generated
    assert run(repetition_penalty=1.0) == free


def test_repetition_penalty_changes_choices_towards_unseen_tokens():
    model = ToySeq2Seq(sharpness=3.0, seed=5)
    base = dict(strategy="greedy", nbest=1, max_len_a=0.0, max_len_b=30, **REPETITION_OFF)
    free = greedy_search(model, SRC, SearchConfig(**base))
    penalized = greedy_search(model, SRC, SearchConfig(**{**base, "repetition_penalty": 5.0}))
    distinct = lambda outs: sum(len(set(t)) / max(len(t), 1) for t in outs)  # noqa: E731
    assert penalized != free
    assert distinct(penalized) > distinct(free)


def test_the_defaults_end_a_loop_at_three_copies():
    """SearchConfig()'s repeat_guard (3, chosen on the default model's dev set) is on in every strategy: the
    looping toy model's outputs stop at their third copy, and differ from plain search."""
    model = ToySeq2Seq(sharpness=3.0, seed=5)
    limits = dict(max_len_a=0.0, max_len_b=30)
    assert SearchConfig().repeat_guard == 3 and SearchConfig().repetition
    for strategy, nbest in (("greedy", 1), ("beam", 1)):
        search = SearchConfig(strategy=strategy, nbest=nbest, beam_size=3, **limits)
        plain = dataclasses.replace(search, **REPETITION_OFF)
        out, free = ([h[0].tokens for h in beam_search(model, SRC, s)] if strategy == "beam"
                     else greedy_search(model, SRC, s) for s in (search, plain))  # fmt: skip
        assert out != free and not any(has_run(t[:-1], 3) for t in out)


def test_only_eos_edits_the_caught_rows_as_the_masked_sum_does():
    """only_eos against the plain form torch.where(caught, scores + eos_only, scores), NaN rows included."""
    scores = torch.randn(6, 3, 50).log_softmax(-1)  # (B, K, V) as force_eos_at_limit passes it
    scores[4, 1, 7] = float("nan")
    caught = torch.tensor([False, True, False, False, True, False])
    eos_only = torch.full((50,), float("-inf"))
    eos_only[EOS_ID] = 0.0
    expected = torch.where(caught[:, None, None], scores + eos_only, scores)
    out = only_eos(scores.clone(), caught.nonzero().squeeze(1))
    assert torch.equal(out.nan_to_num(-9.0), expected.nan_to_num(-9.0))
