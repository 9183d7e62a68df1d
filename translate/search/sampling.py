"""Ancestral sampling with temperature, top-k and nucleus (top-p) filtering, for back-translation.

Legend: B batch (live rows), S source length, V target vocabulary.
"""

from __future__ import annotations

import torch

from translate.search.config import SearchConfig
from translate.search.greedy import decode_loop


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


@torch.no_grad()
def sample(
    model,
    src: torch.Tensor,
    search: SearchConfig,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
) -> list[list[int]]:
    """src (B, S) -> one sampled translation per sentence (ids without BOS/EOS); top_k=1 is greedy.

    Of `search` only the length limit applies (as in greedy_search)."""

    def choose(logits):  # (B, V) -> (B,)
        probs = filter_logits(logits, temperature=temperature, top_k=top_k, top_p=top_p).softmax(-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)

    return decode_loop(model, src, choose, search, use_cache)
