"""Chapter-held-out split on a synthetic corpus: determinism, disjoint chapters, leakage filter, sizes."""

import random

import pytest
from bible_split import Pair, n_words, split_by_chapter

from translate.data.errors import DataError

REFRAIN = "porque para siempre es su misericordia"


def synthetic_corpus(n_books=8, n_chapters=50, n_verses=20, long_every=3, refrain_every=25):
    """8,000 pairs; in the first two books every 3rd verse has 45 source words (long sentences cluster
    in some books, as in the Bible); every 25th verse is the same refrain."""
    pairs = []
    k = 0
    for b in range(n_books):
        for c in range(1, n_chapters + 1):
            for v in range(1, n_verses + 1):
                k += 1
                if k % refrain_every == 0:
                    src = REFRAIN
                elif b < 2 and k % long_every == 0:
                    src = " ".join(f"largo{k}_{i}" for i in range(45))
                else:
                    src = f"verso {k} del libro {b} capitulo {c}"
                pairs.append(Pair(f"B{b}.{c}.{v}", src, f"verse {k}"))
    return pairs


SIZES = dict(dev_size=200, test_size=400, min_long_test=60, long_words=40)


def chapters(pairs):
    return {p.chapter for p in pairs}


def test_split_is_deterministic_and_independent_of_input_order():
    pairs = synthetic_corpus()
    a = split_by_chapter(pairs, seed=7, **SIZES)
    b = split_by_chapter(pairs, seed=7, **SIZES)
    assert a.test == b.test and a.dev == b.dev and a.train == b.train
    shuffled = pairs[:]
    random.Random(0).shuffle(shuffled)
    c = split_by_chapter(shuffled, seed=7, **SIZES)
    assert chapters(c.test) == chapters(a.test) and chapters(c.dev) == chapters(a.dev)
    other = split_by_chapter(pairs, seed=8, **SIZES)
    assert chapters(other.test) != chapters(a.test)


def test_no_chapter_in_two_splits_and_nothing_lost_but_leaks():
    pairs = synthetic_corpus()
    s = split_by_chapter(pairs, seed=1, **SIZES)
    tr, dv, te = chapters(s.train), chapters(s.dev), chapters(s.test)
    assert not (tr & dv) and not (tr & te) and not (dv & te)
    assert set(s.chapters["dev"]) == dv and set(s.chapters["test"]) == te
    kept = len(s.train) + len(s.dev) + len(s.test)
    assert kept + s.leakage_dropped["dev"] + s.leakage_dropped["test"] == len(pairs)
    # Order within a split follows the input order.
    index = {p.ref: i for i, p in enumerate(pairs)}
    assert [index[p.ref] for p in s.test] == sorted(index[p.ref] for p in s.test)


def test_leakage_filter_drops_sources_seen_in_train():
    pairs = synthetic_corpus()
    s = split_by_chapter(pairs, seed=3, **SIZES)
    train_src = {p.src.casefold() for p in s.train}
    assert REFRAIN in train_src
    assert all(p.src.casefold() not in train_src for p in s.dev + s.test)
    held = [p for p in pairs if p.chapter in set(s.chapters["dev"]) | set(s.chapters["test"])]
    expected = sum(p.src == REFRAIN for p in held)
    assert expected > 0
    assert s.leakage_dropped["dev"] + s.leakage_dropped["test"] == expected


def test_leakage_filter_ignores_case_and_spacing():
    pairs = synthetic_corpus(n_books=4, refrain_every=10**9)
    first = split_by_chapter(pairs, seed=5, **SIZES)
    victim = first.test[0]
    # A 60-verse chapter is too big to hold out, so it lands in train with a variant of the victim.
    variant = "  " + victim.src.upper().replace(" ", "   ") + " "
    pairs += [Pair(f"Extra.1.{v}", variant if v == 1 else f"extra {v}", "x") for v in range(1, 61)]
    s = split_by_chapter(pairs, seed=5, **SIZES)
    assert "Extra.1" not in s.chapters["test"] + s.chapters["dev"]
    assert victim not in s.test and s.leakage_dropped["test"] == 1


def test_sizes_and_long_sentence_quota():
    pairs = synthetic_corpus()
    s = split_by_chapter(pairs, seed=11, **SIZES)
    # Whole chapters of 20 verses: at most one chapter over the target, minus leaked refrains.
    assert 400 - 20 <= len(s.test) <= 400 + 20
    assert 200 - 20 <= len(s.dev) <= 200 + 20
    assert sum(n_words(p.src) >= 40 for p in s.test) >= 60
    assert len(s.train) > 7000


def test_big_chapters_stay_in_train():
    pairs = synthetic_corpus(n_books=2)
    pairs += [Pair(f"Ps.119.{v}", f"salmo {v} " + "x " * 45, f"psalm {v}") for v in range(1, 177)]
    s = split_by_chapter(pairs, seed=2, dev_size=100, test_size=200, min_long_test=20)
    assert "Ps.119" not in s.chapters["test"] + s.chapters["dev"]


def test_unreachable_long_quota_is_a_clear_error():
    pairs = synthetic_corpus(n_books=4, long_every=10**9)
    with pytest.raises(DataError, match="40\\+ source words"):
        split_by_chapter(pairs, seed=1, dev_size=50, test_size=100, min_long_test=10)
