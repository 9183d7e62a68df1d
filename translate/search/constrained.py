"""Lexically constrained beam search with dynamic beam allocation (Post and Vilar 2018): every constraint (a
target id sequence, e.g. a glossary term) appears in the translation, where the model puts it.

Each step, per sentence, the candidates are (a) the K best continuations overall, (b) each live beam's best
token and (c) for each live beam the next token of every constraint it has not met (or of the one it is in
the middle of). A candidate's bank is how many constraint tokens its hypothesis has produced; the K new beams
are taken round-robin from the banks, fullest bank first, best first within a bank, so hypotheses that have
met more constraints survive beside the likelier ones that have met fewer. A beam may end (EOS) only once it
has met every constraint; at the length limit every beam must end, and a sentence none of whose hypotheses
met them all gets its best unconstrained-ended hypothesis (logged). A sentence's length limit is raised to the
terms' total length where it is below it.

A constraint in progress that the next token does not continue is abandoned (its tokens count nothing). When
two constraints start with the same token, the first unmet one is started. The stopping rule is beam.py's
(search.stopping): exact, a sentence stops when no live beam can beat its nbest-th finished
(all-constraints-met) hypothesis; k_ended, once K of them have ended.

Legend: B batch (live sentences), K beam size, V target vocabulary, C constraints of a sentence.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from translate.data.vocab import EOS_ID
from translate.search.beam import (
    Hypothesis,
    SearchError,
    best_first,
    force_eos_at_limit,
    length_penalty,
    step_logp,
)
from translate.search.config import SearchConfig
from translate.search.stepper import Stepper, bos, max_lengths, sequence_limit

log = logging.getLogger(__name__)


class Term(tuple):
    """A constraint: its target ids, and the ids that may not come right after it (pieces that would glue
    onto its last word: "God" + "s"); glossary.py fills them from the tokenizer, a plain id list has none."""

    def __new__(cls, ids, no_follow: Sequence[int] = ()):
        term = super().__new__(cls, ids)
        term.no_follow = torch.tensor(sorted(no_follow), dtype=torch.long)  # (F,)
        return term


@dataclass(frozen=True)
class Progress:
    """Which constraints a hypothesis has met, the one it is in the middle of (index, tokens done), and the
    one its last token completed (whose no_follow ids cannot come next)."""

    met: tuple[bool, ...]
    current: int = -1  # constraint being produced; -1 = none
    done: int = 0  # its tokens produced so far
    just_met: int = -1  # constraint completed by the last token; -1 = none

    def covered(self, constraints: Sequence[Sequence[int]]) -> int:
        """Constraint tokens produced: the bank of this hypothesis."""
        return sum(len(c) for c, m in zip(constraints, self.met) if m) + self.done

    @property
    def complete(self) -> bool:
        return all(self.met)

    def allowed(self, constraints: Sequence[Sequence[int]]) -> list[int]:
        """The tokens that advance a constraint: the next of the current one, else the first of each unmet."""
        if self.current >= 0:
            return [constraints[self.current][self.done]]
        return [c[0] for c, m in zip(constraints, self.met) if not m]

    def advance(self, token: int, constraints: Sequence[Sequence[int]]) -> Progress:
        if self.current >= 0:
            c = constraints[self.current]
            if token == c[self.done]:
                if self.done + 1 == len(c):
                    return Progress(self._meet(self.current), just_met=self.current)
                return Progress(self.met, self.current, self.done + 1)
        for i, (c, m) in enumerate(zip(constraints, self.met)):  # abandoned, or none current: start one?
            if not m and token == c[0]:
                return Progress(self._meet(i), just_met=i) if len(c) == 1 else Progress(self.met, i, 1)
        return Progress(self.met)

    def _meet(self, i: int) -> tuple[bool, ...]:
        return tuple(m or j == i for j, m in enumerate(self.met))


@dataclass
class Beam:
    tokens: list[int]
    score: float  # raw log-probability; -inf = a dead slot
    progress: Progress


def allocate(cands: list[tuple[float, int, int, Progress]], banks: int, K: int, constraints):
    """cands (score, beam, token, progress), best first -> the K kept: round-robin over the banks, from the
    one with the most constraint tokens down, best first within each bank."""
    by_bank: list[list] = [[] for _ in range(banks)]
    for c in cands:
        by_bank[c[3].covered(constraints)].append(c)
    kept: list = []
    cursor = [0] * banks
    while len(kept) < K and any(cursor[b] < len(by_bank[b]) for b in range(banks)):
        for b in reversed(range(banks)):
            if cursor[b] < len(by_bank[b]) and len(kept) < K:
                kept.append(by_bank[b][cursor[b]])
                cursor[b] += 1
    return kept


def sentence_step(
    beams: list[Beam], logp: torch.Tensor, constraints, step: int, K: int, alpha: float
) -> tuple[list[Beam], list[int], list[Hypothesis], list[Hypothesis]]:
    """One sentence, one step: beams (K), logp (K, V) -> (new beams (K), the beam each extends, hypotheses
    that ended with every constraint met, hypotheses that ended at the limit without)."""
    scores = torch.tensor([b.score for b in beams], dtype=logp.dtype)  # (K,)
    cand = scores[:, None] + logp.cpu()  # (K, V)
    for k, b in enumerate(beams):
        if not b.progress.complete and torch.isfinite(cand[k]).sum() > 1:  # EOS only once all are met
            cand[k, EOS_ID] = float("-inf")  # (at the limit EOS is the one finite token: it stays)
        if b.progress.just_met >= 0:  # a term just ended: no piece that would glue onto its last word
            cand[k, constraints[b.progress.just_met].no_follow] = float("-inf")
    V = cand.size(1)
    picks: set[tuple[int, int]] = set()
    top = cand.view(-1).topk(min(2 * K, cand.numel())).indices.tolist()
    picks.update((i // V, i % V) for i in top)
    picks.update((k, int(t)) for k, t in enumerate(cand.argmax(1).tolist()))
    for k, b in enumerate(beams):
        picks.update((k, t) for t in b.progress.allowed(constraints))
    ended, failed, cands = [], [], []
    for k, t in picks:
        s = float(cand[k, t])
        if s == float("-inf") or s != s:
            continue
        b = beams[k]
        if t == EOS_ID:
            hyp = Hypothesis(list(b.tokens), s / length_penalty(step + 1, alpha), s)
            (ended if b.progress.complete else failed).append(hyp)
        else:
            cands.append((s, k, t, b.progress.advance(t, constraints)))
    cands.sort(key=lambda c: -c[0])
    banks = sum(len(c) for c in constraints) + 1
    kept = allocate(cands, banks, K, constraints)
    new = [Beam(beams[k].tokens + [t], s, p) for s, k, t, p in kept]
    src = [k for _, k, _, _ in kept]
    dead = Progress(tuple(True for _ in constraints))
    while len(new) < K:  # fewer candidates than beams: dead slots
        new.append(Beam([], float("-inf"), dead))  # (no token of it is ever read)
        src.append(0)
    ended = sorted(ended, key=lambda h: -h.score)[:K]
    return new, src, ended, failed


@torch.no_grad()
def constrained_beam_search(
    model, src: torch.Tensor, search: SearchConfig, constraints: Sequence[Sequence[Sequence[int]]], *,
    use_cache: bool = True, vocab: torch.Tensor | None = None,
) -> list[list[Hypothesis]]:  # fmt: skip
    """src (B, S), constraints per sentence (target id sequences, each non-empty) -> per sentence its
    search.nbest best hypotheses that hold every constraint, best first (see the module docstring)."""
    K, alpha, dev = search.beam_size, search.alpha, src.device
    B = src.size(0)
    if len(constraints) != B:
        raise ValueError(f"constraints for {len(constraints)} sentences, batch of {B}")
    cons = [[c if isinstance(c, Term) else Term(c) for c in cs] for cs in constraints]
    if any(not c for cs in cons for c in cs):
        raise ValueError("a constraint is empty")
    limit = max_lengths(src, search.max_len_a, search.max_len_b, sequence_limit(model))  # (B,)
    need = torch.tensor([sum(len(c) for c in cs) for cs in cons], device=dev)  # (B,) the terms' tokens
    cap = sequence_limit(model)
    limit = torch.maximum(limit, need if cap is None else need.clamp(max=cap))  # room for every term
    stepper = Stepper(model, src, use_cache=use_cache, vocab=vocab)
    stepper.reorder(torch.arange(B, device=dev).repeat_interleave(K))  # B rows -> B*K rows
    beams = [[Beam([], 0.0 if k == 0 else float("-inf"), Progress(tuple(False for _ in cs)))
              for k in range(K)] for cs in cons]  # fmt: skip; only beam 0 is alive at first
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    failed: list[list[Hypothesis]] = [[] for _ in range(B)]
    sent = list(range(B))  # original sentence of each live sentence
    tokens = bos(B * K, dev)
    t = 0
    while sent:
        Bl = len(sent)
        history = torch.tensor([b.tokens + [EOS_ID] * (t - len(b.tokens)) for i in sent for b in beams[i]]
                               if search.repetition else [[]] * (Bl * K), dtype=torch.long, device=dev)
        # (Bl*K, t) the beams' tokens (dead slots padded with EOS); (Bl*K, 0) without repetition controls
        logp = step_logp(stepper.step(tokens), history, t, search).view(Bl, K, -1)  # (Bl, K, V)
        steps = torch.full((Bl,), t, dtype=torch.long, device=dev)
        logp = force_eos_at_limit(logp, steps, limit[sent])
        keep, rows, next_tokens = [], [], []
        for j, i in enumerate(sent):
            new, src_beam, ended, bad = sentence_step(beams[i], logp[j], cons[i], t, K, alpha)
            finished[i] += ended
            failed[i] += bad
            beams[i] = new
            best = sorted(h.score for h in finished[i])[::-1]
            reach = max(b.score for b in new) / length_penalty(int(limit[i]) + 1, alpha)
            if search.stopping == "k_ended":
                if len(best) >= K or reach == float("-inf"):
                    continue  # K hypotheses have ended (or no beam is alive)
            elif len(best) >= search.nbest and reach <= best[search.nbest - 1] or reach == float("-inf"):
                continue  # no live beam can beat the nbest-th finished one (or none is alive)
            keep.append(i)
            rows += [j * K + k for k in src_beam]
            next_tokens += [b.tokens[-1] if b.tokens else EOS_ID for b in new]
        t += 1
        sent = keep
        if sent:
            stepper.reorder(torch.tensor(rows, dtype=torch.long, device=dev))
            tokens = torch.tensor(next_tokens, dtype=torch.long, device=dev)
    out = []
    for i in range(B):
        if not finished[i]:
            if not failed[i]:
                raise SearchError([i])
            log.warning("sentence %d: no hypothesis within its length limit holds every glossary term", i)
        out.append(best_first(finished[i] or failed[i], search.nbest))
    return out
