"""Repetition controls on next-token logits: no_repeat_ngram_size, repetition_penalty (CTranslate2's names and
meanings) and repeat_guard (ours). Every strategy calls `control_repetition` on a step's logits, before the
log-softmax (as CTranslate2's logits processors), and `end_repeats` after it, with the tokens each row has
generated so far.

  repetition_penalty p   tokens generated so far: logit / p where it is positive, logit * p where negative
                         (CTRL, Keskar et al. 2019; CTranslate2's RepetitionPenalty)
  no_repeat_ngram_size n a token that would complete an n-gram already in the row's target is -inf
                         (CTranslate2's NoRepeatNgram; n = 1 forbids any token twice)
  repeat_guard R         a row whose last tokens are R copies of one n-gram (n = 1..GUARD_NGRAM) can only
                         end: every token but EOS is -inf (EOS keeps its own logit, so a beam pays for it)

Legend: R rows (sentences or beams), T history width, V target vocabulary.
"""

from __future__ import annotations

import torch

from translate.data.vocab import EOS_ID
from translate.search.config import GUARD_NGRAM, SearchConfig


def control_repetition(
    logits: torch.Tensor, history: torch.Tensor, lengths: torch.Tensor, search: SearchConfig
) -> torch.Tensor:
    """logits (R, V) float, history (R, T) ids (row r valid up to lengths[r]), lengths (R,) -> logits (R, V)
    with repetition_penalty and no_repeat_ngram_size applied (unchanged when both are off)."""
    if history.size(1) == 0:
        return logits
    if search.repetition_penalty != 1.0:
        valid = torch.arange(history.size(1), device=history.device)[None, :] < lengths[:, None]  # (R, T)
        logits = penalize_repeats(logits, history, valid, search.repetition_penalty)
    if search.no_repeat_ngram_size:
        logits = block_ngrams(logits, history, lengths, search.no_repeat_ngram_size)
    return logits


def end_repeats(
    logp: torch.Tensor, history: torch.Tensor, lengths: torch.Tensor, search: SearchConfig
) -> torch.Tensor:
    """logp (R, V) log-probabilities (or logits) -> the same, rows caught by repeat_guard only able to end
    (edited in place: every caller passes the step's own logits)."""
    if not search.repeat_guard or history.size(1) == 0:
        return logp
    return guard_repeats(logp, history, lengths, search.repeat_guard)


def seen_tokens(history: torch.Tensor, valid: torch.Tensor, vocab: int) -> torch.Tensor:
    """(R, T) ids, (R, T) bool -> (R, V) bool: the tokens each row has generated."""
    idx = torch.where(valid, history, vocab)  # invalid positions -> an extra column, dropped below
    seen = torch.zeros(history.size(0), vocab + 1, dtype=torch.bool, device=history.device)
    return seen.scatter_(1, idx, True)[:, :vocab]


def penalize_repeats(logits: torch.Tensor, history: torch.Tensor, valid: torch.Tensor, penalty: float):
    seen = seen_tokens(history, valid, logits.size(1))  # (R, V)
    penalized = torch.where(logits < 0, logits * penalty, logits / penalty)
    return torch.where(seen, penalized, logits)


def block_ngrams(logits: torch.Tensor, history: torch.Tensor, lengths: torch.Tensor, n: int) -> torch.Tensor:
    """-inf for every token that would repeat an n-gram of the row's target."""
    R, T = history.shape
    if T < n:
        return logits
    windows = history.unfold(1, n, 1)  # (R, W, n), W = T - n + 1, window j = tokens j .. j+n-1
    start = torch.arange(windows.size(1), device=history.device)  # (W,)
    complete = start[None, :] + n <= lengths[:, None]  # (R, W) the window lies inside the generated tokens
    if n > 1:
        tail_pos = (lengths[:, None] - (n - 1) + torch.arange(n - 1, device=history.device)).clamp(min=0)
        tail = history.gather(1, tail_pos)  # (R, n-1) the row's last n-1 tokens
        match = (windows[:, :, : n - 1] == tail[:, None, :]).all(-1) & complete  # (R, W)
        match &= (lengths >= n)[:, None]  # a tail exists and at least one complete window before it
    else:
        match = complete
    banned = torch.where(match, windows[:, :, n - 1], logits.size(1))  # (R, W) the token each match forbids
    mask = torch.zeros(R, logits.size(1) + 1, dtype=torch.bool, device=logits.device)
    mask.scatter_(1, banned, True)
    return logits.masked_fill(mask[:, : logits.size(1)], float("-inf"))


def repeated_tail(history: torch.Tensor, lengths: torch.Tensor, copies: int, n: int) -> torch.Tensor:
    """(R,) bool: the row's last copies * n tokens are `copies` copies of one n-gram."""
    span = copies * n
    pos = (lengths[:, None] - span + torch.arange(span, device=history.device)).clamp(min=0)  # (R, span)
    tail = history.gather(1, pos)  # (R, span)
    periodic = (tail[:, n:] == tail[:, :-n]).all(1)  # (R,) token i equals token i + n throughout
    return periodic & (lengths >= span)


def guard_repeats(logits: torch.Tensor, history: torch.Tensor, lengths: torch.Tensor, copies: int):
    stuck = torch.zeros_like(lengths, dtype=torch.bool)  # (R,)
    for n in range(1, GUARD_NGRAM + 1):
        if copies * n <= history.size(1):
            stuck |= repeated_tail(history, lengths, copies, n)
    if not stuck.any():
        return logits
    return only_eos(logits, stuck.nonzero().squeeze(1))


def only_eos(scores: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """scores (R, ...V) edited in place and returned: rows `rows` (n,) may only end, every token but EOS -inf
    and EOS keeping its score. The same numbers as torch.where(caught, scores + eos_only, scores), which
    reads and writes all R rows where this touches the n caught ones."""
    eos_only = torch.full_like(scores[(0,) * (scores.dim() - 1)], float("-inf"))  # (V,)
    eos_only[EOS_ID] = 0.0
    return scores.index_copy_(0, rows, scores.index_select(0, rows) + eos_only)


def cut_at_repeats(tokens: list[int], copies: int) -> list[int]:
    """The tokens up to the first point where they end in `copies` copies of one n-gram (n = 1..GUARD_NGRAM):
    what repeat_guard leaves of a greedy or sampled output (engines without the guard cut theirs so)."""
    for end in range(1, len(tokens) + 1):
        for n in range(1, GUARD_NGRAM + 1):
            span = copies * n
            tail = tokens[end - span : end]
            if end >= span and all(tail[i] == tail[i + n] for i in range(span - n)):
                return tokens[:end]
    return tokens
