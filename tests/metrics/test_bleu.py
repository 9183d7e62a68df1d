"""sacrebleu wrapper: scores, signatures and the sufficient-statistics shortcut."""

from importlib.metadata import requires

import pytest
import sacrebleu
from packaging.requirements import Requirement
from sacrebleu.metrics import BLEU

from translate.metrics.bleu import bleu_from_stats, corpus_scores, sentence_stats

HYPS = ["In the beginning God created the heaven and the earth.", "God is love.", "And the light shone."]
REFS = ["In the beginning God created the heavens and the earth.", "God is love.", "The light shines."]


def test_corpus_scores_match_sacrebleu_and_carry_signatures():
    s = corpus_scores(HYPS, REFS)
    assert s["bleu"] == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS]).score)
    assert s["chrf"] == pytest.approx(sacrebleu.corpus_chrf(HYPS, [REFS]).score)
    assert "tok:13a" in s["bleu_signature"] and "nrefs:1" in s["bleu_signature"]
    assert "nc:6" in s["chrf_signature"]
    assert corpus_scores(REFS, REFS)["bleu"] == pytest.approx(100.0)


def test_summed_sentence_stats_give_corpus_bleu_of_any_subset():
    stats = sentence_stats(HYPS, REFS)
    assert len(stats) == 3
    total = [sum(col) for col in zip(*stats)]
    assert bleu_from_stats(total) == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS]).score)
    sub = [sum(col) for col in zip(stats[0], stats[2])]
    assert bleu_from_stats(sub) == pytest.approx(sacrebleu.corpus_bleu(HYPS[::2], [REFS[::2]]).score)


def test_length_mismatch_and_empty_input_are_errors():
    with pytest.raises(ValueError, match="2 hypotheses for 3 references"):
        corpus_scores(HYPS[:2], REFS)
    with pytest.raises(ValueError, match="no sentences to score"):
        corpus_scores([], [])


def test_the_private_sacrebleu_methods_we_use_exist_and_behave():
    """bleu.py calls BLEU._extract_corpus_statistics and BLEU._compute_score_from_stats, which are private:
    pyproject.toml pins sacrebleu to the range tested here, and this test fails first if a release changes
    them (then widen the pin only after it passes)."""
    pin = next(Requirement(r) for r in requires("translate") if Requirement(r).name == "sacrebleu")
    assert pin.specifier.contains(sacrebleu.__version__) and any(s.operator == "<" for s in pin.specifier)
    bleu = BLEU()
    stats = bleu._extract_corpus_statistics(HYPS, [REFS])
    assert len(stats) == len(HYPS) and all(len(row) == 2 + 2 * bleu.max_ngram_order for row in stats)
    # layout: hypothesis length, reference length, then n-gram matches and totals for n = 1..4;
    # "God is love ." against itself: 4 tokens, every n-gram matches
    assert list(stats[1]) == [4, 4, 4, 3, 2, 1, 4, 3, 2, 1]
    total = [sum(col) for col in zip(*stats)]
    score = bleu._compute_score_from_stats(total)
    assert score.score == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS]).score)
    assert score.bp == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS]).bp)
