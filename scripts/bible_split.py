"""Deterministic train/dev/test split of a verse-aligned corpus that holds out whole chapters.

Neighbouring verses share names, formulas and whole phrases, so a random verse split leaks the test
set into training. Here every chapter goes to exactly one split, chosen by a seeded SHA-256 hash of
its name (stable across Python versions and machines), and dev/test pairs whose source sentence
also occurs in train (refrains such as "Porque para siempre es su misericordia") are dropped.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

from translate.data.errors import DataError


@dataclass(frozen=True)
class Pair:
    ref: str  # "Book.chapter.verse", e.g. "Gen.1.1"
    src: str
    tgt: str

    @property
    def chapter(self) -> str:
        return self.ref.rsplit(".", 1)[0]


@dataclass
class Split:
    train: list[Pair]
    dev: list[Pair]
    test: list[Pair]
    leakage_dropped: dict[str, int] = field(default_factory=dict)  # split -> pairs dropped
    chapters: dict[str, list[str]] = field(default_factory=dict)  # split -> held-out chapter names


def n_words(text: str) -> int:
    return len(text.split())


def _chapter_order(chapters: list[str], seed: int) -> list[str]:
    return sorted(chapters, key=lambda c: hashlib.sha256(f"{seed}:{c}".encode()).hexdigest())


def _source_key(text: str) -> str:
    return " ".join(text.casefold().split())


def split_by_chapter(
    pairs: list[Pair],
    *,
    dev_size: int = 1000,
    test_size: int = 2000,
    min_long_test: int = 150,
    long_words: int = 40,
    seed: int = 1909,
) -> Split:
    """Hold out whole chapters for test, then dev; everything else is train.

    Test is filled in two passes over the chapters in hash order: first only chapters whose share of
    source sentences with `long_words`+ words is at least `min_long_test / test_size`, until
    `min_long_test` (+10 for the leakage filter) such pairs are in; then any chapter, until `test_size`
    pairs. Dev takes the next chapters in hash order up to `dev_size`. A chapter larger
    than a tenth of its split's target is left to train so one long chapter (Psalm 119) cannot dominate.
    The split is a pure function of the pairs and the seed. Order within each split follows the input.
    """
    by_chapter: dict[str, list[Pair]] = {}
    for p in pairs:
        by_chapter.setdefault(p.chapter, []).append(p)
    order = _chapter_order(list(by_chapter), seed)
    long_in = {c: sum(n_words(p.src) >= long_words for p in ps) for c, ps in by_chapter.items()}

    taken: dict[str, str] = {}  # chapter -> "test" | "dev"
    size = Counter()
    long_test = 0

    def take(chapter: str, split: str, target: int) -> None:
        nonlocal long_test
        if chapter in taken or size[split] >= target or len(by_chapter[chapter]) > target // 10:
            return
        taken[chapter] = split
        size[split] += len(by_chapter[chapter])
        if split == "test":
            long_test += long_in[chapter]

    needed_share = min_long_test / test_size
    for c in order:
        if long_test >= min_long_test + 10:  # a little margin for the leakage filter below
            break
        if long_in[c] >= needed_share * len(by_chapter[c]):
            take(c, "test", test_size)
    for c in order:
        take(c, "test", test_size)
    for c in order:
        take(c, "dev", dev_size)

    train = [p for p in pairs if p.chapter not in taken]
    train_sources = {_source_key(p.src) for p in train}
    out = Split(train=train, dev=[], test=[])
    for split in ("dev", "test"):
        held = [p for p in pairs if taken.get(p.chapter) == split]
        kept = [p for p in held if _source_key(p.src) not in train_sources]
        setattr(out, split, kept)
        out.leakage_dropped[split] = len(held) - len(kept)
        out.chapters[split] = [c for c in order if taken.get(c) == split]
    n_long = sum(n_words(p.src) >= long_words for p in out.test)
    if n_long < min_long_test:
        raise DataError(
            f"test split has {n_long} pairs with {long_words}+ source words, fewer than {min_long_test}: "
            "the corpus is too small or too short for this split"
        )
    return out
