"""Beam search's stopping rule on a scripted model whose best translation needs the search to keep going
after early EOS endings, and the per-step functions another decoder can call."""

import itertools
import math

import pytest
import torch

from translate.data.vocab import BOS_ID, EOS_ID
from translate.search import SearchConfig, SearchError, beam_search, greedy_search, length_penalty
from translate.search.beam import best_possible, can_stop, force_eos_at_limit, update_finished
from translate.search.config import REPETITION_OFF

pytestmark = pytest.mark.usefixtures("one_thread")

CONTENT = (1, 4, 5)  # UNK and two words: the tokens a hypothesis can hold in a 6-token vocabulary
V = 6


def script(prefix: tuple[int, ...]) -> dict[int, float]:
    """Next-token probabilities after `prefix`. EOS at once is the likeliest single move (0.40), and "5"
    ends right after (0.9): two early endings. "4" repeated five times then EOS is far likelier per token,
    and with the length penalty it is the best translation."""
    if not prefix:
        return {EOS_ID: 0.40, 4: 0.35, 5: 0.20, 1: 0.05}
    if prefix[0] == 5:
        return {EOS_ID: 0.9, 1: 0.1 / 3, 4: 0.1 / 3, 5: 0.1 / 3}
    if all(t == 4 for t in prefix):
        if len(prefix) < 5:
            return {4: 0.97, EOS_ID: 0.01, 1: 0.01, 5: 0.01}
        return {EOS_ID: 0.97, 1: 0.01, 4: 0.01, 5: 0.01}
    return {t: 0.25 for t in (EOS_ID, *CONTENT)}


class Scripted:
    """The Seq2Seq decoding interface over `script`: the state is each row's generated prefix."""

    max_positions = None  # any length

    def encode(self, src):  # (B, S) -> state
        return {"prefix": [() for _ in range(src.size(0))], "first": src[:, 0].tolist()}

    def step(self, tokens, state):  # (B,) -> (B, V) logits
        prefixes = [p if t == BOS_ID else p + (t,) for p, t in zip(state["prefix"], tokens.tolist())]
        logits = torch.full((len(prefixes), V), -1e9)
        for row, p in enumerate(prefixes):
            for tok, prob in script(p).items():
                logits[row, tok] = math.log(prob)
        return logits, {**state, "prefix": prefixes}

    def reorder_state(self, state, index):
        return {k: [v[i] for i in index.tolist()] for k, v in state.items()}


def logprob(tokens: tuple[int, ...]) -> float:
    return sum(math.log(script(tokens[:i])[t]) for i, t in enumerate(tokens + (EOS_ID,)))


def exact_best(max_len: int, alpha: float) -> tuple[list[int], float]:
    """Every sequence up to max_len scored by the script itself (1,093 of them for max_len 6)."""
    seqs = (s for n in range(max_len + 1) for s in itertools.product(CONTENT, repeat=n))
    best = max(seqs, key=lambda s: logprob(s) / length_penalty(len(s) + 1, alpha))
    return list(best), logprob(best) / length_penalty(len(best) + 1, alpha)


SRC = torch.tensor([[4, EOS_ID]])
LIMIT = 6


def to_limit(**changes) -> SearchConfig:
    """Plain search settings (no repetition control: the script's best, 4 4 4 4 4, is a run the default
    repeat_guard would end) with the length limit LIMIT whatever the source length."""
    return SearchConfig(max_len_a=0.0, max_len_b=LIMIT, **REPETITION_OFF, **changes)


@pytest.mark.parametrize("beam_size", [1, 2, 3, 8])
def test_early_endings_do_not_stop_the_search(beam_size):
    """Beam < search space. With "stop once K hypotheses ended", beams 2 and 8 returned the empty
    translation (score -0.916) while 4 4 4 4 4 (score -0.835) was still alive."""
    best_tokens, best_score = exact_best(LIMIT, 0.6)
    assert best_tokens == [4] * 5 and best_score > logprob(()) / length_penalty(1, 0.6)
    hyps = beam_search(Scripted(), SRC, to_limit(beam_size=beam_size, alpha=0.6))
    assert hyps[0][0].tokens == best_tokens
    assert hyps[0][0].score == pytest.approx(best_score, abs=1e-5)


@pytest.mark.parametrize("beam_size", [2, 8])
def test_k_ended_stops_once_k_hypotheses_ended(beam_size):
    """stopping k_ended (CTranslate2's rule) stops once K hypotheses ended, and early endings (the empty
    translation, "5" then EOS, ...) fill them before 4 4 4 4 4 (-0.835) can end: it returns the empty one
    (-0.916), which the exact rule searches past."""
    hyps = beam_search(Scripted(), SRC, to_limit(beam_size=beam_size, alpha=0.6, stopping="k_ended"))[0]
    exact = beam_search(Scripted(), SRC, to_limit(beam_size=beam_size, alpha=0.6))[0]
    assert exact[0].tokens == [4] * 5
    assert hyps[0].tokens == [] and hyps[0].score == pytest.approx(logprob(()) / length_penalty(1, 0.6))


def test_greedy_stops_at_the_first_eos_where_beam_one_goes_on():
    """Greedy ends with the likeliest first token (EOS); beam 1 keeps its best non-EOS beam alive while it can
    still win, so with alpha > 0 it may return a longer, better-scored translation than greedy."""
    assert greedy_search(Scripted(), SRC, to_limit()) == [[]]
    beam = beam_search(Scripted(), SRC, to_limit(beam_size=1, alpha=0.6))
    assert beam[0][0].tokens == [4] * 5
    # alpha = 0: a live beam's log-probability is already below the EOS greedy took, so beam 1 is greedy
    beam = beam_search(Scripted(), SRC, to_limit(beam_size=1, alpha=0.0))
    assert beam[0][0].tokens == [] == exact_best(LIMIT, 0.0)[0]


def test_nbest_waits_for_the_nbest_th_hypothesis():
    hyps = beam_search(Scripted(), SRC, to_limit(beam_size=4, nbest=3, alpha=0.6))[0]
    seqs = [s for n in range(LIMIT + 1) for s in itertools.product(CONTENT, repeat=n)]
    ranked = sorted(seqs, key=lambda s: -logprob(s) / length_penalty(len(s) + 1, 0.6))
    assert [h.tokens for h in hyps] == [list(s) for s in ranked[:3]]


def test_the_bound_is_the_raw_score_over_the_longest_penalty():
    scores = torch.tensor([[-1.0, -3.0], [-2.0, float("-inf")], [float("-inf"), float("-inf")]])  # (B, K)
    limit = torch.tensor([4, 9, 4])  # (B,) each sentence its own limit
    bound = best_possible(scores, limit, 0.6)
    assert bound[0] == pytest.approx(-1.0 / length_penalty(5, 0.6))
    assert bound[1] == pytest.approx(-2.0 / length_penalty(10, 0.6))
    assert bound[2] == float("-inf")  # no live beam
    assert best_possible(scores, limit, 0.0)[:2].tolist() == [-1.0, -2.0]
    finished = torch.tensor([[-0.7], [-1.2], [float("-inf")]])  # (B, N=1): bounds -0.74, -1.15, -inf
    assert can_stop(scores, finished, limit, 0.6).tolist() == [True, False, True]
    # k_ended: the K-th column of best filled, whatever the live beams could still reach
    ended = torch.tensor([[-1.0, float("-inf")], [-1.0, -2.0], [-3.0, -4.0]])
    assert can_stop(scores[:, :2], ended, limit, 0.6, stopping="k_ended").tolist() == [False, True, True]


def test_step_functions_take_per_sentence_steps_and_limits():
    logp = torch.randn(3, 2, V).log_softmax(-1)  # (B, K, V)
    steps, limit = torch.tensor([2, 5, 0]), torch.tensor([2, 9, 0])  # sentences joined at different steps
    forced = force_eos_at_limit(logp.clone(), steps, limit)
    assert torch.equal(forced[1], logp[1])
    for b in (0, 2):
        assert torch.isfinite(forced[b]).sum() == 2 and torch.isfinite(forced[b, :, EOS_ID]).all()
    best = torch.full((3, 2), float("-inf"))  # (B, N)
    top = torch.tensor([[-1.0, -2.0, -3.0, -4.0]]).expand(3, 4)  # (B, 2K)
    ended = torch.tensor([[True, False, True, False]]).expand(3, 4)
    best = update_finished(best, top, ended, steps, 1.0)
    for b in range(3):
        lp = length_penalty(int(steps[b]) + 1, 1.0)
        assert best[b].tolist() == pytest.approx([-1.0 / lp, -3.0 / lp])


def test_nan_logits_are_a_clear_error():
    class Broken(Scripted):
        def step(self, tokens, state):
            logits, state = super().step(tokens, state)
            broken = torch.tensor([first == 5 for first in state["first"]])  # (B,) rows of sources "5 ..."
            return logits.masked_fill(broken[:, None], float("nan")), state

    src = torch.tensor([[4, EOS_ID], [5, EOS_ID], [4, EOS_ID]])
    with pytest.raises(SearchError, match="sentence 1: no hypothesis with a finite score"):
        beam_search(Broken(), src, SearchConfig(beam_size=2, max_len_a=0.0, max_len_b=3))
    hyps = beam_search(Broken(), src[::2], SearchConfig(beam_size=2, max_len_b=3, **REPETITION_OFF))
    assert [h[0].tokens for h in hyps] == [[4] * 5] * 2
    guarded = beam_search(Broken(), src[::2], SearchConfig(beam_size=2, max_len_b=3))  # repeat_guard 3
    assert [h[0].tokens for h in guarded] == [[]] * 2  # 4 4 4 can only end, and scores below the empty one


def test_the_length_penalty_cannot_overflow():
    """((5 + len) / 6) ** alpha raised OverflowError for alpha 1e308 (and 300 past ~100 subwords); computed
    in log space with a capped exponent it stays finite for any input, and equals the formula where finite."""
    assert length_penalty(7, 0.6) == pytest.approx(((5 + 7) / 6) ** 0.6, rel=1e-12)
    assert length_penalty(1, 0.0) == 1.0
    for length, alpha in [(120, 300.0), (5, 1e308), (10**9, 5.0)]:
        lp = length_penalty(length, alpha)
        assert math.isfinite(lp) and lp > 1.0
        t = length_penalty(torch.tensor([length, 3]), torch.tensor([alpha, alpha], dtype=torch.float64))
        assert torch.isfinite(t).all() and t[0].item() == pytest.approx(lp, rel=1e-9)
        assert torch.isfinite(torch.tensor([-50.0]) / t.float()).all()  # a score over it stays finite


def test_the_length_limit_holds_whatever_the_score():
    """alpha NaN made every comparison of the stopping rule false: the sentence ran to the server's timeout.
    The step at the limit ends every beam and the sentence stops there (a config that bypassed validation)."""
    search = to_limit(beam_size=3, nbest=2, alpha=0.6)
    object.__setattr__(search, "alpha", float("nan"))  # what SearchConfig refuses
    steps = []

    class Counting(Scripted):
        def step(self, tokens, state):
            steps.append(len(tokens))
            return super().step(tokens, state)

    hyps = beam_search(Counting(), SRC, search)
    assert len(steps) == LIMIT + 1 and all(len(h.tokens) <= LIMIT for h in hyps[0])
    past = torch.tensor([LIMIT + 1])
    assert can_stop(torch.tensor([[-1.0]]), torch.tensor([[-5.0]]), torch.tensor([LIMIT]), math.nan, past)
