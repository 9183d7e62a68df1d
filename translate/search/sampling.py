"""Ancestral sampling with temperature, top-k and nucleus (top-p) filtering (strategy "sample"), seeded per
sentence: a sentence's draws depend only on SearchConfig.seed and its source ids, not on the batch it shares,
so the CLI, the evaluator, the server (continuous batching) and a rerun give the same sample.

Legend: B batch (live rows), V target vocabulary.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

from translate.search.config import SearchConfig
from translate.search.topk import argmax


def filter_logits(logits: torch.Tensor, *, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0):
    """logits (B, V) -> logits (B, V) with the tokens outside top-k / the top-p nucleus set to -inf.

    top-k keeps exactly k tokens, even when the k-th is tied with others. The nucleus is the smallest set of
    most likely tokens whose probability reaches top_p (the token that crosses the threshold is kept, so the
    set is never empty).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    logits = logits / temperature
    if top_k > 0 and top_k < logits.size(-1):
        top = logits.topk(top_k, dim=-1).indices  # (B, k)
        keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, top, True)  # (B, V)
        logits = logits.masked_fill(~keep, float("-inf"))  # exactly k survive, ties broken by topk
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)  # (B, V)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop_sorted = (cum - sorted_logits.softmax(-1)) >= top_p  # mass before this token already reaches p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sentence_seed(seed: int, src_ids: Sequence[int]) -> int:
    """A 63-bit generator seed from the config's seed and one source sentence's ids (EOS and PAD excluded)."""
    digest = hashlib.blake2b(f"{seed}:{','.join(map(str, src_ids))}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class Sampler:
    """The token chooser of strategy "sample": one torch.Generator per row, following its row."""

    def __init__(self, search: SearchConfig, device):
        self.search, self.device = search, device
        self.generators: list[torch.Generator] = []

    def add(self, sources: Sequence[Sequence[int]]) -> None:
        """New rows at the end, one per source (ids without EOS)."""
        for ids in sources:
            g = torch.Generator(device=self.device)
            g.manual_seed(sentence_seed(self.search.seed, ids))
            self.generators.append(g)

    def keep(self, index: Sequence[int]) -> None:
        self.generators = [self.generators[i] for i in index]

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        """logits (B, V) -> (B,) one draw per row from its own generator."""
        s = self.search
        probs = filter_logits(logits, temperature=s.sampling_temperature, top_k=s.sampling_topk,
                              top_p=s.sampling_topp).softmax(-1)  # fmt: skip
        return torch.cat([torch.multinomial(probs[r], 1, generator=g) for r, g in enumerate(self.generators)])


class Greedy:
    """The token chooser of strategy "greedy": the arg-max; no per-row state."""

    def add(self, sources: Sequence[Sequence[int]]) -> None:
        """Stateless: a new row needs nothing."""

    def keep(self, index: Sequence[int]) -> None:
        """Stateless: nothing follows the rows."""

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return argmax(logits)  # (B,): torch's argmax, from chunk maxima on the CPU (topk.py)


def token_chooser(search: SearchConfig, device) -> Greedy | Sampler:
    """The per-row chooser of a one-hypothesis strategy (search.greedy or strategy "sample")."""
    return Sampler(search, device) if search.strategy == "sample" else Greedy()
