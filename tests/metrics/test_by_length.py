"""BLEU by source length: buckets as in Bahdanau et al. Fig. 2, exact per-bucket BLEU, bootstrap intervals."""

import random

import numpy as np
import pytest
import sacrebleu

from translate.metrics.bleu import sentence_stats
from translate.metrics.by_length import EDGES, Bootstrap, bleu_by_length, bootstrap_interval, bucket_index

WORDS = "el la de que y en los se del las un por con no una su para es al lo como".split()
EN = "the of and to in that is was he for it with as his on be at by had not are but from or".split()


def corpus(n=120, seed=0):
    rng = random.Random(seed)
    src, hyp, ref = [], [], []
    for _ in range(n):
        n_src = rng.choice([3, 8, 12, 25, 33, 47, 55, 70])
        src.append(" ".join(rng.choice(WORDS) for _ in range(n_src)))
        r = [rng.choice(EN) for _ in range(max(2, n_src))]
        h = [w if rng.random() < 0.7 else rng.choice(EN) for w in r]
        ref.append(" ".join(r))
        hyp.append(" ".join(h))
    return src, hyp, ref


def test_bucket_edges_follow_the_figure():
    assert [bucket_index(n) for n in (0, 1, 10, 11, 20, 21, 59, 60, 61, 500)] == [
        0,
        0,
        0,
        1,
        1,
        2,
        5,
        5,
        6,
        6,
    ]
    assert len(EDGES) == 7


def test_each_bucket_is_sacrebleu_on_its_sentences():
    src, hyp, ref = corpus()
    res = bleu_by_length(src, hyp, ref, bootstrap=Bootstrap(resamples=50))
    assert [b["range"] for b in res] == ["0-10", "10-20", "20-30", "30-40", "40-50", "50-60", "60+"]
    assert sum(b["count"] for b in res) == len(src)
    for b in res:
        members = [i for i, s in enumerate(src) if bucket_index(len(s.split())) == EDGES.index(b["lo"])]
        assert b["count"] == len(members)
        expected = sacrebleu.corpus_bleu([hyp[i] for i in members], [[ref[i] for i in members]]).score
        assert b["bleu"] == pytest.approx(expected)
        # a percentile interval need not contain the point estimate: check only what always holds
        assert 0.0 <= b["ci"][0] < b["ci"][1] <= 100.0
    assert res[-1]["hi"] is None and res[0]["hi"] == 10


def test_interval_is_the_percentile_bootstrap_of_sacrebleu():
    """The interval of one bucket recomputed the slow way: each resample's corpus BLEU by sacrebleu itself."""
    src, hyp, ref = corpus()
    res = bleu_by_length(src, hyp, ref, bootstrap=Bootstrap(resamples=40, seed=3))
    i = 1  # the 10-20 bucket
    members = [j for j, s in enumerate(src) if bucket_index(len(s.split())) == i]
    n = len(members)
    counts = np.random.default_rng(3 + i).multinomial(n, np.full(n, 1 / n), size=40)  # (R, N)
    scores = []
    for row in counts:  # (N,) how often each member is drawn
        picked = [m for m, c in zip(members, row) for _ in range(c)]
        scores.append(sacrebleu.corpus_bleu([hyp[j] for j in picked], [[ref[j] for j in picked]]).score)
    assert res[i]["ci"] == pytest.approx(list(np.percentile(scores, [2.5, 97.5])))


def test_empty_bucket_and_determinism():
    src, hyp, ref = corpus(40)
    keep = [i for i, s in enumerate(src) if len(s.split()) <= 30]
    kept = [src[i] for i in keep], [hyp[i] for i in keep], [ref[i] for i in keep]
    res = bleu_by_length(*kept, bootstrap=Bootstrap(resamples=30))
    assert res[-1] == {"range": "60+", "lo": 60, "hi": None, "count": 0, "bleu": None, "ci": None}
    again = bleu_by_length(*kept, bootstrap=Bootstrap(resamples=30))
    assert res == again


def test_bootstrap_interval_narrows_with_more_sentences():
    src, hyp, ref = corpus(400, seed=1)
    stats = np.asarray(sentence_stats(hyp, ref))
    small = bootstrap_interval(stats[:25], Bootstrap(resamples=200))
    large = bootstrap_interval(stats, Bootstrap(resamples=200))
    assert large[1] - large[0] < small[1] - small[0]
    identical = np.repeat(stats[:1], 30, axis=0)  # every resample is the same corpus
    lo, hi = bootstrap_interval(identical, Bootstrap(resamples=20))
    assert lo == pytest.approx(hi)


def test_empty_input_is_a_clear_error():
    with pytest.raises(ValueError, match="^bleu_by_length: no sentences to score$"):
        bleu_by_length([], [], [])
    with pytest.raises(ValueError, match="^bootstrap_interval: no sentences to resample$"):
        bootstrap_interval(np.zeros((0, 10), dtype=np.int64))
