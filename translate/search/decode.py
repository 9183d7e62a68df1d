"""decode: the one entry point that dispatches on SearchConfig.strategy, for a padded batch of sources.

  strategy beam (beam_size > 1 or nbest > 1)  beam.beam_search: n-best Hypothesis lists, ranked
  greedy, or beam with beam_size 1 and nbest 1 greedy.decode_loop with sampling.Greedy (score NaN)
  sample                                      greedy.decode_loop with sampling.Sampler (score NaN)
  constraints (a glossary's target terms)     constrained.constrained_beam_search (strategy beam only)

translate_ids (offline decoding of a dataset) calls decode per batch; the continuous decoder picks its step
with the same rule (search.greedy / strategy), its chooser from sampling.token_chooser; the CTranslate2 engine
maps the same config onto its options (engines/ct2.py, ct2_options). A new one-hypothesis strategy is a token
chooser in sampling.py (add, keep, __call__) plus its SearchConfig fields. A shortlist (shortlist.py) gives
every strategy the batch's restricted vocabulary (the glossary terms' ids added).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from translate.data.vocab import PAD_ID
from translate.search.beam import Hypothesis, SearchError, beam_search
from translate.search.config import SearchConfig
from translate.search.constrained import constrained_beam_search
from translate.search.greedy import decode_loop
from translate.search.shortlist import Shortlist


def decode(
    model, src: torch.Tensor, search: SearchConfig, *, use_cache: bool = True,
    constraints: Sequence[Sequence[Sequence[int]]] | None = None, shortlist: Shortlist | None = None,
) -> list[list[Hypothesis]]:  # fmt: skip
    """src (B, S) ids with EOS, right-padded -> per sentence its hypotheses (search.nbest, best first).

    constraints: per sentence a list of target id sequences that must appear in its translation (lexically
    constrained beam search); None or all empty = unconstrained. shortlist: the output projection restricted
    to the batch's candidate target pieces (and the constraints' ids). Raises ValueError for constraints with
    a one-hypothesis strategy, SearchError (beam) for sentences with no finite hypothesis.
    """
    constrained = constraints is not None and any(constraints)
    vocab = None
    if shortlist is not None:
        terms = [t for cs in constraints or () for c in cs for t in c] if constrained else []
        vocab = shortlist.vocab(src, terms)  # (Vs,)
    if constrained:
        if len(constraints) != src.size(0):
            raise ValueError(f"constraints for {len(constraints)} sentences, batch of {src.size(0)}")
        if search.strategy != "beam" or search.greedy:
            raise ValueError("glossary terms need beam search (strategy beam, beam_size >= 2)")
        return constrained_split(model, src, search, constraints, use_cache, vocab)
    if search.greedy or search.strategy == "sample":
        found = decode_loop(model, src, search, use_cache, vocab)
        return [[Hypothesis(toks, math.nan)] for toks in found]
    return beam_search(model, src, search, use_cache=use_cache, vocab=vocab)


def constrained_split(model, src, search, constraints, use_cache, vocab=None) -> list[list[Hypothesis]]:
    """Sentences with constraints through constrained beam search, the others through beam_search (the same
    translations as without a glossary)."""
    with_terms = [i for i, c in enumerate(constraints) if c]
    plain = [i for i, c in enumerate(constraints) if not c]
    out: list[list[Hypothesis] | None] = [None] * src.size(0)
    for rows, run in ((with_terms, True), (plain, False)):
        if not rows:
            continue
        part = src[torch.tensor(rows, device=src.device)]
        part = part[:, : int((part != PAD_ID).sum(1).max())]  # drop the columns only other rows needed
        try:
            hyps = (constrained_beam_search(model, part, search, [constraints[i] for i in rows],
                                            use_cache=use_cache, vocab=vocab) if run
                    else beam_search(model, part, search, use_cache=use_cache, vocab=vocab))  # fmt: skip
        except SearchError as e:
            raise SearchError([rows[r] for r in e.rows]) from None
        for i, h in zip(rows, hyps):
            out[i] = h
    return out  # type: ignore[return-value]
