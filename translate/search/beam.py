"""Batched beam search with the GNMT length penalty, n-best lists, and finished sentences leaving the batch.

Every sentence keeps K live beams in one (B*K)-row decoder state; after each step the state is reordered by
model.reorder_state (the KV cache follows its beams). Each step takes the 2K best candidates: an EOS among
the K best ends its hypothesis (it joins the sentence's finished list), and the K best that do not end
become the next live beams, so a sentence always has K live beams.

Stopping rule (search.stopping). exact (the default, exact for the beam): a sentence stops only when no live
beam can still beat its nbest-th finished hypothesis. Log-probabilities only fall, so a live beam with raw
log-probability s ends, at best, with s over the largest length penalty it can reach, lp(limit + 1)
(alpha = 0: s itself). k_ended: a sentence stops once K hypotheses have ended (CTranslate2's and fairseq's
rule). Either way a sentence also stops when none of its beams is alive (at its length limit every beam must
end).

The per-step pieces are small functions over per-sentence tensors (steps and limits are (B,) tensors), so
a decoder whose sentences joined at different steps (continuous batching) can call them and reproduce
beam_search exactly: first_scores for new sentences, then per step beam_step (force_eos_at_limit ->
top_candidates -> ended_mask -> update_finished -> next_beams) and can_stop, and best_first at the end.

Legend: B batch (live sentences), K beam size, N nbest, S source length, T generated length,
V target vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from translate.data.vocab import EOS_ID
from translate.search.config import STOPPINGS, SearchConfig
from translate.search.repetition import control_repetition, end_repeats, only_eos
from translate.search.stepper import Stepper, bos, mask_specials, max_lengths, sequence_limit
from translate.search.topk import candidates_topk


@dataclass
class Hypothesis:
    tokens: list[int]  # generated ids without BOS/EOS
    score: float  # log-probability (EOS included) divided by the length penalty
    logprob: float = 0.0  # the raw log-probability


class SearchError(ValueError):
    """A sentence ended with no hypothesis: the model's log-probabilities were not finite (NaN/inf logits).

    `rows` are the sentences' indices in the batch (translate_ids maps them to dataset indices).
    """

    def __init__(self, rows: list[int], what: str = "sentence"):
        self.rows = sorted(rows)
        shown = ", ".join(map(str, self.rows[:10])) + (", ..." if len(self.rows) > 10 else "")
        super().__init__(
            f"{what} {shown}: no hypothesis with a finite score (the model's logits are NaN or infinite)"
        )


LOG_LP_MAX = 80.0  # lp never exceeds e ** 80 (~5.5e34, below float32's 3.4e38): it cannot overflow


def length_penalty(length, alpha):
    """GNMT (Wu et al. 2016): lp(Y) = ((5 + |Y|) / 6) ** alpha; alpha = 0 ranks by raw log-probability.

    `length` is an int or a tensor of lengths (the result then has its shape); `alpha` a float or, for
    per-sentence settings, a tensor that broadcasts against `length`. Computed as exp(alpha * log(...)) with
    the exponent capped at LOG_LP_MAX, so no alpha and no length overflows (SearchConfig's bounds keep real
    settings far below the cap: ALPHA_MAX with a length of 10 million is e ** 72).
    """
    if isinstance(length, torch.Tensor) or isinstance(alpha, torch.Tensor):
        length = torch.as_tensor(length, dtype=torch.float64)
        return torch.exp((alpha * torch.log((5.0 + length) / 6.0)).clamp(max=LOG_LP_MAX))
    return math.exp(min(alpha * math.log((5.0 + length) / 6.0), LOG_LP_MAX))


def force_eos_at_limit(logp: torch.Tensor, steps: torch.Tensor, limit: torch.Tensor) -> torch.Tensor:
    """logp (B, K, V), steps (B,) tokens generated so far, limit (B,) -> logp where sentences that reached
    their limit can only pick EOS (every other token -inf); edited in place, only those sentences' rows."""
    at_limit = limit <= steps  # (B,)
    if not at_limit.any():
        return logp
    return only_eos(logp, at_limit.nonzero().squeeze(1))


def top_candidates(scores: torch.Tensor, logp: torch.Tensor):
    """scores (B, K) raw log-probabilities of the live beams, logp (B, K, V) of their next tokens ->
    (top_scores, top_beam, top_tok), each (B, 2K), best first: at most K of them end, K stay alive."""
    V = logp.size(2)
    top_scores, top_idx = candidates_topk(scores, logp, 2 * scores.size(1))  # (B, 2K) of the K*V sums
    top_scores = top_scores.nan_to_num(nan=float("-inf"), posinf=float("-inf"))  # broken logits end nothing
    return top_scores, top_idx // V, top_idx % V


def ended_mask(top_scores: torch.Tensor, top_tok: torch.Tensor, beam_size: int) -> torch.Tensor:
    """(B, 2K) -> (B, 2K) bool: the candidates that end a hypothesis (EOS among the K best, finite score)."""
    rank = torch.arange(top_tok.size(1), device=top_tok.device)  # (2K,)
    return (top_tok == EOS_ID) & (rank < beam_size) & torch.isfinite(top_scores)


def update_finished(
    best: torch.Tensor, top_scores: torch.Tensor, ended: torch.Tensor, steps: torch.Tensor, alpha
) -> torch.Tensor:
    """best (B, N) length-normalised scores of each sentence's N best finished hypotheses (-inf = none yet),
    sorted best first; add the candidates that end now, which have `steps` (B,) tokens plus EOS."""
    lp = length_penalty(steps.double() + 1.0, alpha).to(top_scores.dtype)  # (B,)
    new = torch.where(ended, top_scores / lp[:, None], float("-inf"))  # (B, 2K)
    return torch.cat([best, new], 1).topk(best.size(1), dim=1).values  # (B, N)


def next_beams(top_scores: torch.Tensor, top_beam: torch.Tensor, top_tok: torch.Tensor, beam_size: int):
    """(B, 2K) candidates -> (scores, beam_src, tokens), each (B, K): the K best that do not end, by rank."""
    rank = torch.arange(top_tok.size(1), device=top_tok.device)  # (2K,)
    order = (rank + (top_tok == EOS_ID).long() * top_tok.size(1)).argsort(dim=-1)[:, :beam_size]  # (B, K)
    return top_scores.gather(1, order), top_beam.gather(1, order), top_tok.gather(1, order)


def best_possible(scores: torch.Tensor, limit: torch.Tensor, alpha) -> torch.Tensor:
    """scores (B, K) raw log-probabilities of the live beams, limit (B,) -> (B,) the best length-normalised
    score any of them can still reach: max raw / lp(limit + 1), as log-probabilities only fall (-inf when
    no beam is alive)."""
    lp = length_penalty(limit.double() + 1.0, alpha).to(scores.dtype)  # (B,)
    return scores.max(1).values / lp  # (B,)


def can_stop(
    scores: torch.Tensor, best: torch.Tensor, limit: torch.Tensor, alpha, steps: torch.Tensor | None = None,
    stopping: str = STOPPINGS[0],
) -> torch.Tensor:
    """(B,) bool: exact: no live beam (scores (B, K)) can beat the nbest-th finished hypothesis (best (B, N));
    k_ended: best (B, K) is full, K hypotheses have ended; or the sentence has taken the step at its length
    limit (`steps` (B,) > limit: every beam had to end there), which holds whatever the scores are (NaN
    included)."""
    if stopping == "k_ended":
        done = best[:, -1] > float("-inf")  # (B,) the K-th ended hypothesis exists
    else:
        done = best_possible(scores, limit, alpha) <= best[:, -1]
    return done if steps is None else done | (steps > limit)


def first_scores(batch: int, beam_size: int, device) -> torch.Tensor:
    """(B, K) raw scores of new sentences' beams: all beams start identical, so only beam 0 is alive (the
    first step must not pick the same token K times)."""
    scores = torch.full((batch, beam_size), float("-inf"), device=device)
    scores[:, 0] = 0.0
    return scores


def beam_step(
    scores: torch.Tensor, best: torch.Tensor, logp: torch.Tensor, steps: torch.Tensor, limit: torch.Tensor,
    history: torch.Tensor, alpha,
):  # fmt: skip
    """One step for every live sentence: scores (B, K) raw log-probabilities of the live beams, best (B, N),
    logp (B, K, V) of their next tokens, steps (B,) tokens each has generated, limit (B,), history (B, K, >=T)
    the live beams' tokens, alpha a float or (B,) per sentence -> (scores, best, beam_src, tokens, ended): the
    K new beams (scores, the beam each extends and its new token, each (B, K)), the updated best, and
    [(b, Hypothesis)] for the hypotheses that ended now (one host copy per step, not one per hypothesis)."""
    K = scores.size(1)
    logp = force_eos_at_limit(logp, steps, limit)  # (B, K, V)
    top_scores, top_beam, top_tok = top_candidates(scores, logp)  # (B, 2K) each
    ended = ended_mask(top_scores, top_tok, K)  # (B, 2K)
    found = []
    if ended.any():
        best = update_finished(best, top_scores, ended, steps, alpha)
        raw_cpu, beam_cpu, hist_cpu, t_cpu = top_scores.cpu(), top_beam.cpu(), history.cpu(), steps.tolist()
        alphas = alpha.tolist() if isinstance(alpha, torch.Tensor) else [alpha] * len(t_cpu)
        for b, j in ended.nonzero().tolist():
            raw, t = raw_cpu[b, j].item(), t_cpu[b]
            tokens = hist_cpu[b, beam_cpu[b, j], :t].tolist()
            found.append((b, Hypothesis(tokens, raw / length_penalty(t + 1, alphas[b]), raw)))
    scores, beam_src, new_tok = next_beams(top_scores, top_beam, top_tok, K)  # (B, K) each
    return scores, best, beam_src, new_tok, found


def step_logp(logits: torch.Tensor, history: torch.Tensor, lengths, search: SearchConfig) -> torch.Tensor:
    """A step's logits (R, V) -> log-probabilities (R, V): PAD/BOS masked, the repetition controls on the
    logits, the log-softmax, then repeat_guard (a caught beam pays its EOS log-probability to end).
    history (R, T) the rows' tokens, lengths (R,) or an int: how many of them are valid."""
    logits = mask_specials(logits.float())
    if not search.repetition:
        return logits.log_softmax(-1)
    if isinstance(lengths, int):
        lengths = torch.full((logits.size(0),), lengths, dtype=torch.long, device=logits.device)
    logp = control_repetition(logits, history, lengths, search).log_softmax(-1)
    return end_repeats(logp, history, lengths, search)


def best_first(hyps: list[Hypothesis], nbest: int) -> list[Hypothesis]:
    """A sentence's finished hypotheses -> its nbest best, best first (the search's result for it)."""
    return sorted(hyps, key=lambda h: -h.score)[:nbest]


@torch.no_grad()
def beam_search(
    model, src: torch.Tensor, search: SearchConfig, *, use_cache: bool = True,
    vocab: torch.Tensor | None = None,
) -> list[list[Hypothesis]]:  # fmt: skip
    """src (B, S) -> per sentence its search.nbest best hypotheses, best first (score = logprob / lp).

    search.beam_size beams (1 is beam search too, not greedy_search), length penalty search.alpha, length
    limit max_len_a * source length + max_len_b, search's repetition controls (step_logp). Raises SearchError
    when a sentence ends with no hypothesis (NaN or infinite logits). vocab: a shortlist's ids (Stepper).
    """
    K, alpha, nbest, dev = search.beam_size, search.alpha, search.nbest, src.device
    B = src.size(0)
    limit = max_lengths(src, search.max_len_a, search.max_len_b, sequence_limit(model))  # (B,)
    stepper = Stepper(model, src, use_cache=use_cache, vocab=vocab)
    stepper.reorder(torch.arange(B, device=dev).repeat_interleave(K))  # B rows -> B*K rows
    scores = first_scores(B, K, dev)  # (B, K) raw log-probabilities of live beams
    best = torch.full((B, search.ended_kept), float("-inf"), device=dev)  # (B, N) normalised, best ended
    history = torch.empty(B, K, 0, dtype=torch.long, device=dev)  # (B, K, T)
    sent = torch.arange(B, device=dev)  # (B,) original sentence of each live sentence
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    tokens = bos(B * K, dev)
    t = 0
    while sent.numel() > 0:
        Bl = sent.numel()
        steps = torch.full((Bl,), t, dtype=torch.long, device=dev)  # (Bl,) tokens generated so far
        logp = step_logp(stepper.step(tokens), history.reshape(Bl * K, t), t, search)  # (Bl*K, V)
        scores, best, beam_src, new_tok, found = beam_step(
            scores, best, logp.view(Bl, K, -1), steps, limit[sent], history, alpha
        )  # (Bl, K) new beams, (Bl, N)
        if found:
            sent_cpu = sent.tolist()
            for b, hyp in found:
                finished[sent_cpu[b]].append(hyp)
        history = history.gather(1, beam_src[:, :, None].expand(-1, -1, t))  # (Bl, K, T) follow the beams
        history = torch.cat([history, new_tok[:, :, None]], 2)  # (Bl, K, T+1)
        t += 1

        done = can_stop(scores, best, limit[sent], alpha, steps + 1, search.stopping)  # (Bl,)
        keep = (~done).nonzero().squeeze(1)  # (Bl',)
        rows = (keep[:, None] * K + beam_src[keep]).reshape(-1)  # (Bl'*K,) state rows of the kept beams
        sent, scores, best, history = sent[keep], scores[keep], best[keep], history[keep]
        new_tok = new_tok[keep]
        if keep.numel() > 0:
            stepper.reorder(rows)
        tokens = new_tok.reshape(-1)
    empty = [i for i, f in enumerate(finished) if not f]
    if empty:
        raise SearchError(empty)
    return [best_first(f, nbest) for f in finished]
