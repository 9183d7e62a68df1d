"""BLEU by source sentence length with bootstrap confidence intervals: Bahdanau et al. (2014), Fig. 2.

Sentences are bucketed by the number of whitespace-separated words of the (Spanish) source: 0-10 holds
1..10 words (an empty source counts here too), 10-20 holds 11..20, ..., and 60+ everything above 60.
Each bucket gets its corpus BLEU (sacrebleu, from per-sentence sufficient statistics tokenized once) and a
percentile bootstrap interval: resample the bucket's sentences with replacement, recompute corpus BLEU.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from translate.metrics.bleu import bleu_from_stats, check_pairs, sentence_stats

EDGES = (0, 10, 20, 30, 40, 50, 60)  # lower edges; the last bucket is open (60+)


def bucket_index(n_words: int, edges: tuple[int, ...] = EDGES) -> int:
    """Bucket of a sentence of n_words: (edges[i], edges[i+1]], the first also taking 0, the last open."""
    for i in range(len(edges) - 1, 0, -1):
        if n_words > edges[i]:
            return i
    return 0


def bucket_label(i: int, edges: tuple[int, ...] = EDGES) -> str:
    return f"{edges[i]}+" if i == len(edges) - 1 else f"{edges[i]}-{edges[i + 1]}"


@dataclass(frozen=True)
class Bootstrap:
    """The percentile bootstrap's settings: the one home of their defaults (conf/evaluate.yaml's `bootstrap`
    node is this, typed, through translate.evaluation.config.EvalSettings)."""

    resamples: int = 200  # resamples of the sentences, with replacement
    confidence: float = 0.95  # the interval's coverage
    seed: int = 0

    def __post_init__(self) -> None:
        if self.resamples < 1:
            raise ValueError(f"bootstrap.resamples must be >= 1, got {self.resamples}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"bootstrap.confidence must be between 0 and 1, got {self.confidence}")


def bootstrap_interval(stats: np.ndarray, bootstrap: Bootstrap = Bootstrap()) -> tuple[float, float]:
    """stats (N, 10) per-sentence BLEU statistics -> percentile interval of corpus BLEU over resamples."""
    n = stats.shape[0]
    if n == 0:
        raise ValueError("bootstrap_interval: no sentences to resample")
    rng = np.random.default_rng(bootstrap.seed)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=bootstrap.resamples)  # (R, N) draws per sentence
    sums = counts @ stats  # (R, 10) summed statistics of each resample
    scores = np.array([bleu_from_stats(row.tolist()) for row in sums])
    tail = (1.0 - bootstrap.confidence) / 2 * 100
    lo, hi = np.percentile(scores, [tail, 100 - tail])
    return float(lo), float(hi)


def bleu_by_length(
    sources: list[str],
    hyps: list[str],
    refs: list[str],
    *,
    edges: tuple[int, ...] = EDGES,
    bootstrap: Bootstrap = Bootstrap(),
) -> list[dict]:
    """-> one dict per bucket: range, lo, hi (None for the open bucket), count, bleu, ci [lo, hi].

    Bucket i resamples with seed bootstrap.seed + i, so the buckets' draws are independent.

    bleu and ci are None for an empty bucket; no sentences at all is a ValueError.
    """
    check_pairs(hyps, refs)
    check_pairs(sources, refs)
    if not sources:
        raise ValueError("bleu_by_length: no sentences to score")
    stats = np.asarray(sentence_stats(hyps, refs), dtype=np.int64).reshape(len(hyps), -1)  # (N, 10)
    which = np.array([bucket_index(len(s.split()), edges) for s in sources], dtype=np.int64)  # (N,)
    out = []
    for i in range(len(edges)):
        rows = stats[which == i]
        entry = {
            "range": bucket_label(i, edges),
            "lo": edges[i],
            "hi": edges[i + 1] if i + 1 < len(edges) else None,
            "count": int(rows.shape[0]),
            "bleu": None,
            "ci": None,
        }
        if rows.shape[0]:
            entry["bleu"] = bleu_from_stats(rows.sum(0).tolist())
            entry["ci"] = list(bootstrap_interval(rows, replace(bootstrap, seed=bootstrap.seed + i)))
        out.append(entry)
    return out
