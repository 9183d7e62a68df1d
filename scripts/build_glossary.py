"""Build a glossary of names and terms from the training pairs: a source word -> the target word aligned with
it by co-occurrence (Dice coefficient over verse pairs), for words written with a capital in most of their
occurrences (names: Jehová -> Yahweh, Moisés -> Moses, Egipto -> Egypt).

    .venv/bin/python scripts/build_glossary.py                      # -> reports/glossary.tsv
    .venv/bin/python scripts/build_glossary.py --min-count 30 --min-dice 0.8 --out terms.tsv

A pair is kept when the source word occurs in at least --min-count training pairs, its best target word has
Dice >= --min-dice, and each side is capitalised in at least --capitalised of its occurrences. The output is
a glossary TSV (source<TAB>target, most frequent first) for `translate --glossary`, `make eval GLOSSARY=...`
and scripts/measure_search.py.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import re
from collections import Counter
from pathlib import Path

from translate.files import write_text

ROOT = Path(__file__).resolve().parents[1]

WORD = re.compile(r"\w+(?:['’]\w+)?")


def read_pairs(path: Path) -> list[tuple[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [(r["es"], r["en"]) for r in rows]


def capital_share(texts: list[str]) -> tuple[Counter, Counter]:
    """-> (pairs holding the capitalised word, occurrences of the word in any case, keyed by capitalised)."""
    upper, any_case = Counter(), Counter()
    for text in texts:
        for w in WORD.findall(text):
            key = w[0].upper() + w[1:]
            any_case[key] += 1
            if w[0].isupper():
                upper[key] += 1
    return upper, any_case


def build(pairs, min_count: int, min_dice: float, capitalised: float, limit: int) -> list[tuple]:
    src_up, src_all = capital_share([s for s, _ in pairs])
    tgt_up, tgt_all = capital_share([t for _, t in pairs])
    names_src = {w for w, n in src_up.items() if n >= capitalised * src_all[w] and len(w) > 1}
    names_tgt = {w for w, n in tgt_up.items() if n >= capitalised * tgt_all[w] and len(w) > 1}
    cs, ct, cst = Counter(), Counter(), Counter()
    for s, t in pairs:
        ws = {w for w in WORD.findall(s) if w in names_src}
        wt = {w for w in WORD.findall(t) if w in names_tgt}
        cs.update(ws)
        ct.update(wt)
        cst.update((a, b) for a in ws for b in wt)
    best: dict[str, tuple[float, str]] = {}
    for (a, b), n in cst.items():
        dice = 2 * n / (cs[a] + ct[b])
        if dice > best.get(a, (0.0, ""))[0]:
            best[a] = (dice, b)
    kept = [(a, b, cs[a]) for a, (dice, b) in best.items() if cs[a] >= min_count and dice >= min_dice]
    return sorted(kept, key=lambda x: -x[2])[:limit]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", default=str(ROOT / "data/bible_es_en/train.tsv.gz"))
    p.add_argument("--min-count", type=int, default=20)
    p.add_argument("--min-dice", type=float, default=0.8)
    p.add_argument("--capitalised", type=float, default=0.95)
    p.add_argument("--limit", type=int, default=300)
    p.add_argument("--out", default="reports/glossary.tsv")
    args = p.parse_args(argv)
    terms = build(read_pairs(Path(args.train)), args.min_count, args.min_dice, args.capitalised, args.limit)
    text = "# source\ttarget (scripts/build_glossary.py: names aligned by Dice over the training pairs)\n"
    write_text(Path(args.out), text + "".join(f"{a}\t{b}\n" for a, b, _ in terms))
    print(f"{len(terms)} terms -> {args.out}; the most frequent: "
          + ", ".join(f"{a} -> {b} ({n})" for a, b, n in terms[:8]))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
