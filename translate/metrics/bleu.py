"""Corpus BLEU and chrF through sacrebleu on detokenized text, with signatures."""

from __future__ import annotations

from sacrebleu.metrics import BLEU, CHRF


def check_pairs(hyps: list[str], refs: list[str]) -> None:
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")


def corpus_scores(hyps: list[str], refs: list[str]) -> dict:
    """-> {bleu, chrf, bleu_signature, chrf_signature}; sacrebleu defaults (13a, exp smoothing)."""
    check_pairs(hyps, refs)
    if not hyps:
        raise ValueError("corpus_scores: no sentences to score")
    bleu, chrf = BLEU(), CHRF()
    return {
        "bleu": bleu.corpus_score(hyps, [refs]).score,
        "chrf": chrf.corpus_score(hyps, [refs]).score,
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }


def sentence_stats(hyps: list[str], refs: list[str]) -> list[list[int]]:
    """Per sentence BLEU sufficient statistics (lengths and n-gram matches/totals), tokenized once.

    Summing the rows of any subset and calling `bleu_from_stats` gives that subset's corpus BLEU exactly,
    which makes bootstrap resampling and length buckets cheap.
    """
    check_pairs(hyps, refs)
    return BLEU()._extract_corpus_statistics(hyps, [refs])


def bleu_from_stats(stats_sum: list[int]) -> float:
    """Corpus BLEU from summed sufficient statistics (see sentence_stats)."""
    return BLEU()._compute_score_from_stats(list(stats_sum)).score
