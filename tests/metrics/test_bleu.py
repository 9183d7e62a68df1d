"""sacrebleu wrapper: scores, signatures and the sufficient-statistics shortcut."""

import pytest
import sacrebleu

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


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 hypotheses for 3 references"):
        corpus_scores(HYPS[:2], REFS)
