"""Translate a whole dataset: batches by source tokens over length-sorted sentences, input order restored.

Sorting by length keeps padding low; within a batch, finished sentences leave early (greedy and beam both
shrink the batch), so one long sentence does not hold the short ones.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from tqdm import tqdm

from translate.data.batching import TokenBatchSampler, pad_sources
from translate.search.beam import Hypothesis, SearchError
from translate.search.config import SearchConfig
from translate.search.decode import decode
from translate.search.shortlist import Shortlist
from translate.search.stepper import sequence_limit

log = logging.getLogger(__name__)


@torch.no_grad()
def translate_ids(
    model,
    src_ids: Sequence[Sequence[int]],
    search: SearchConfig,
    *,
    use_cache: bool = True,
    progress: bool = False,
    desc: str = "translate",
    constraints: Sequence[Sequence[Sequence[int]]] | None = None,
    shortlist: Shortlist | None = None,
) -> list[list[Hypothesis]]:
    """Source id lists (no EOS) -> per sentence, in input order, its n-best hypotheses.

    Each batch goes through decode (the strategy's search; greedy and sampling give one hypothesis with
    score NaN: they do not rank); constraints: per sentence the target id sequences its translation must
    hold (a glossary's terms, lexically constrained beam search); shortlist: each batch decodes over its
    candidate target pieces only (search/shortlist.py). Sources longer
    than the model's positions are cut (logged once with the count). A batch holds at most
    search.batch_tokens padded source tokens. Raises SearchError naming the sentences (indices into src_ids)
    for which beam search found no hypothesis with a finite score (NaN or infinite logits).
    """
    device = next(model.parameters()).device
    limit = sequence_limit(model)
    if limit is not None:
        too_long = sum(len(r) > limit for r in src_ids)
        if too_long:
            log.warning("%d source sentence(s) longer than %d tokens were truncated", too_long, limit)
            src_ids = [r[:limit] for r in src_ids]
    out: list[list[Hypothesis] | None] = [None] * len(src_ids)
    if not src_ids:
        return []
    sampler = TokenBatchSampler([len(r) + 1 for r in src_ids], search.batch_tokens, shuffle=False, seed=0)
    batches = sampler.all_batches(0)[::-1]  # longest first: the slowest batches show up early in the bar
    with tqdm(total=len(src_ids), desc=desc, unit="sent", disable=not progress, leave=False) as bar:
        for idx in batches:
            src = pad_sources([src_ids[i] for i in idx], device)  # (B, S)
            batch_constraints = None if constraints is None else [constraints[i] for i in idx]
            try:
                hyps = decode(model, src, search, use_cache=use_cache, constraints=batch_constraints,
                              shortlist=shortlist)
            except SearchError as e:  # batch rows -> indices into src_ids
                raise SearchError([idx[r] for r in e.rows], "source sentence") from None
            for i, h in zip(idx, hyps):
                out[i] = h
            bar.update(len(idx))
    return out  # type: ignore[return-value]


def translate_dataset(model, tokenizer, dataset, search: SearchConfig, **kwargs) -> list[str]:
    """Detokenized best translations of dataset["src_ids"] (a datasets.Dataset or a dict), in dataset order.

    Extra keyword arguments go to translate_ids (use_cache, progress, desc).
    """
    hyps = translate_ids(model, list(dataset["src_ids"]), search, **kwargs)
    return [tokenizer.decode(h[0].tokens, "tgt") for h in hyps]
