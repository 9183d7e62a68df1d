"""Build the embedded Spanish -> English corpus: Reina-Valera 1909 aligned verse by verse with the WEB.

Needs the Debian SWORD modules and pysword (the `corpus` extra of pyproject.toml):

    apt-get install -y sword-text-sparv sword-text-web
    .venv/bin/pip install -e '.[corpus]'        # or: .venv/bin/pip install pysword
    .venv/bin/python scripts/build_bible_corpus.py

Writes data/bible_es_en/{train,dev,test}.tsv.gz (header `ref<TAB>es<TAB>en`, gzip mtime 0, so a rebuild
is byte-identical) and prints the counts, every dropped pair's reason and a length histogram.
Training never needs this script: the output is committed.
"""

from __future__ import annotations

import argparse
import gzip
import io
import re
from collections import Counter
from pathlib import Path

from bible_clean import casing_table, clean_verse, fix_opening_capitals, strip_subscription
from bible_split import Pair, Split, n_words, split_by_chapter
from tqdm import tqdm

from translate.files import write_bytes

SOURCE_MODULE = "spaRV1909eb"  # Debian sword-text-sparv: Reina-Valera 1909, KJV versification
TARGET_MODULE = "engWEB2015eb"  # Debian sword-text-web: World English Bible, NRSVA versification
MAX_CHAR_RATIO = 2.5  # English/Spanish characters: 99.96% of the kept pairs lie within 0.5-1.9
BUCKETS = [(0, 10), (10, 20), (20, 30), (30, 40), (40, 50), (50, 60), (60, None)]

_TOKEN = re.compile(r"[^\W\d_]+|\d+")


def read_module(sword_dir: str, name: str, refs: list[str] | None = None) -> dict[str, str]:
    """Raw OSIS text of every verse, keyed "Book.chapter.verse", in canonical order.

    With `refs`, reads the chapters those references name (the target follows the source's verse list,
    which leaves out the WEB's deuterocanonical books).
    """
    from pysword.modules import SwordModules

    modules = SwordModules(sword_dir)
    found = modules.parse_modules()
    if name not in found:
        raise SystemExit(f"error: SWORD module {name} not found in {sword_dir} (found: {sorted(found)})")
    bible = modules.get_bible_from_module(name)
    books = [b for testament in bible.get_structure().get_books().values() for b in testament]
    wanted = None if refs is None else {r.split(".")[0] for r in refs}
    out: dict[str, str] = {}
    for book in tqdm([b for b in books if wanted is None or b.osis_name in wanted], desc=name, unit="book"):
        for chapter, n_verses in enumerate(book.chapter_lengths, start=1):
            texts = bible.get(books=[book.osis_name], chapters=[chapter], clean=False, join="\x00")
            texts = texts.split("\x00")
            if len(texts) != n_verses:
                raise SystemExit(
                    f"error: {name} {book.osis_name} {chapter}: {len(texts)} verses, expected {n_verses}"
                )
            for verse, text in enumerate(texts, start=1):
                out[f"{book.osis_name}.{chapter}.{verse}"] = text
    return out


def module_version(sword_dir: str, name: str) -> str:
    confs = [Path(sword_dir) / "mods.d" / f"{n}.conf" for n in (name, name.lower())]
    text = next((c.read_text(encoding="utf-8") for c in confs if c.exists()), "")
    m = re.search(r"^Version=(.+)$", text, re.M)
    return m.group(1).strip() if m else "unknown"


def _content_words(text: str) -> set[str]:
    return {w.lower() for w in _TOKEN.findall(text)}


def misaligned(pairs: list[Pair], window: int = 6, margin: float = 0.35, ceiling: float = 0.4) -> set[str]:
    """Refs whose target matches a neighbouring verse's source much better than its own.

    The two modules number some chapters differently (Num 13, 1 Sam 24, Jonah 2, Job 39-41, ...): the
    module keys line up but the text is shifted. A Dice-coefficient dictionary learned from the whole
    corpus (most verses are aligned, so it is reliable) scores each pair by the share of its source
    content words whose likely translation appears in the target; a pair is flagged when a target
    within `window` verses scores `margin` higher while its own score is at most `ceiling`.
    """
    src = [_content_words(p.src) for p in pairs]
    tgt = [_content_words(p.tgt) for p in pairs]
    n = len(pairs)
    f_src = Counter(w for s in src for w in s)
    f_tgt = Counter(w for s in tgt for w in s)
    co: Counter[tuple[str, str]] = Counter()
    for a, b in zip(src, tgt):
        a_ok = [w for w in a if 2 <= f_src[w] <= 0.05 * n]
        b_ok = [w for w in b if 2 <= f_tgt[w] <= 0.05 * n]
        co.update((x, y) for x in a_ok for y in b_ok)
    lexicon: dict[str, set[str]] = {}
    for (x, y), c in co.items():
        if c >= 2 and 2 * c / (f_src[x] + f_tgt[y]) >= 0.3:
            lexicon.setdefault(x, set()).add(y)

    def score(i: int, j: int) -> float:
        known = [w for w in src[i] if w in lexicon]
        return sum(1 for w in known if lexicon[w] & tgt[j]) / len(known) if known else 1.0

    flagged = set()
    for i in range(n):
        own = score(i, i)
        if own > ceiling:
            continue
        best = max(score(i, j) for j in range(max(0, i - window), min(n, i + window + 1)) if j != i)
        if best >= own + margin:
            flagged.add(pairs[i].ref)
    return flagged


def align(
    src_raw: dict[str, str], tgt_raw: dict[str, str]
) -> tuple[list[Pair], dict[str, list[str]], list[str]]:
    """Clean both sides, pair them by reference, drop what cannot be a translation pair."""
    src = {ref: clean_verse(text) for ref, text in src_raw.items()}
    tgt = {ref: clean_verse(tgt_raw.get(ref, "")) for ref in src_raw}
    casing = casing_table(src.values())
    refs = list(src)
    for i, ref in enumerate(refs):
        if ref.endswith(".1"):  # RV1909 opens every chapter in capitals
            src[ref] = fix_opening_capitals(src[ref], casing)
        if i + 1 == len(refs) or refs[i + 1].split(".")[0] != ref.split(".")[0]:
            src[ref] = strip_subscription(src[ref])  # the epistles' colophons

    dropped: dict[str, list[str]] = {}  # reason -> refs
    pairs = []
    for ref in src_raw:
        if not src[ref] or not tgt[ref]:
            reason = "source verse empty (merged into a neighbour)" if not src[ref] else "target verse empty"
            dropped.setdefault(reason, []).append(ref)
            continue
        ratio = len(tgt[ref]) / len(src[ref])
        if not 1 / MAX_CHAR_RATIO <= ratio <= MAX_CHAR_RATIO:
            reason = f"lengths differ more than {MAX_CHAR_RATIO}x (verses merged or split on one side)"
            dropped.setdefault(reason, []).append(ref)
            continue
        pairs.append(Pair(ref, src[ref], tgt[ref]))

    flagged = misaligned(pairs)
    per_chapter = Counter(ref.rsplit(".", 1)[0] for ref in flagged)
    verses = Counter(p.chapter for p in pairs)
    bad_chapters = {c for c, k in per_chapter.items() if k >= max(3, 0.1 * verses[c])}
    kept = []
    for p in pairs:
        if p.chapter in bad_chapters:
            reason = "chapter numbered differently in the two modules (3+ and 10%+ of its verses shifted)"
        elif p.ref in flagged:
            reason = "verse shifted (a neighbouring verse matches better)"
        else:
            kept.append(p)
            continue
        dropped.setdefault(reason, []).append(p.ref)
    return kept, dropped, sorted(bad_chapters)


def histogram(splits: dict[str, list[Pair]]) -> str:
    """Markdown table: Spanish words per verse, bucketed."""
    names = [f"{lo}-{hi}" if hi else f"{lo}+" for lo, hi in BUCKETS]
    lines = ["| split | " + " | ".join(names) + " | total |", "|---" * (len(names) + 2) + "|"]
    for split, pairs in splits.items():
        counts = [sum(1 for p in pairs if lo <= n_words(p.src) < (hi or 10**9)) for lo, hi in BUCKETS]
        lines.append(f"| {split} | " + " | ".join(map(str, counts)) + f" | {len(pairs)} |")
    return "\n".join(lines)


def write_tsv_gz(path: Path, pairs: list[Pair]) -> None:
    """Atomic, byte-reproducible gzip (mtime 0, no file name in the header)."""
    text = "ref\tes\ten\n" + "".join(f"{p.ref}\t{p.src}\t{p.tgt}\n" for p in pairs)
    assert all("\t" not in p.src + p.tgt and "\n" not in p.src + p.tgt for p in pairs)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(text.encode("utf-8"))
    write_bytes(path, buf.getvalue())


def report(
    split: Split, dropped: dict[str, list[str]], bad_chapters: list[str], n_aligned: int, versions: dict
) -> str:
    splits = {"train": split.train, "dev": split.dev, "test": split.test}
    lines = [f"modules: {', '.join(f'{k} {v}' for k, v in versions.items())}"]
    lines.append(f"verse pairs after cleaning and alignment checks: {n_aligned}")
    lines.append("dropped:")
    for reason, refs in dropped.items():
        lines.append(f"  {len(refs):6d}  {reason}")
        if reason.startswith("chapter"):
            lines.append(f"          {' '.join(bad_chapters)}")
        else:
            lines.append(f"          {' '.join(refs)}")
    for name in ("dev", "test"):
        lines.append(
            f"leakage filter: {split.leakage_dropped[name]} {name} pairs dropped (Spanish side also in train)"
        )
    lines.append("pairs per split: " + ", ".join(f"{k} {len(v)}" for k, v in splits.items()))
    lines.append(f"test pairs with 40+ Spanish words: {sum(n_words(p.src) >= 40 for p in split.test)}")
    lines.append(f"held-out chapters: dev {len(split.chapters['dev'])}, test {len(split.chapters['test'])}")
    lines.append(histogram(splits))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sword-dir", default="/usr/share/sword", help="SWORD library (mods.d/, modules/)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "data/bible_es_en")
    parser.add_argument("--seed", type=int, default=1909, help="seed of the chapter hash for the split")
    args = parser.parse_args(argv)

    src_raw = read_module(args.sword_dir, SOURCE_MODULE)
    tgt_raw = read_module(args.sword_dir, TARGET_MODULE, refs=list(src_raw))
    pairs, dropped, bad_chapters = align(src_raw, tgt_raw)
    split = split_by_chapter(pairs, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in ("train", "dev", "test"):
        write_tsv_gz(args.out / f"{name}.tsv.gz", getattr(split, name))
    versions = {m: module_version(args.sword_dir, m) for m in (SOURCE_MODULE, TARGET_MODULE)}
    print(report(split, dropped, bad_chapters, len(pairs), versions))
    print(f"wrote {args.out}/{{train,dev,test}}.tsv.gz")


if __name__ == "__main__":
    main()
