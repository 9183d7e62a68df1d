"""Language detection: accuracy of offline detectors restricted to es, en, fr, it, pt, on whole sentences
and on short texts (their first 1, 2 and 3 words), where LibreTranslate users report most errors.

    .venv/bin/pip install -e '.[detect-bench]'        # langdetect and py3langid, to compare with Lingua
    .venv/bin/python scripts/bench_detect.py          # -> reports/bench_detect.{json,md}

Texts: es and en, the Spanish and English sides of data/bible_es_en/test.tsv.gz (all 1,992 verses, or the
first --verses);
fr, it and pt, tests/fixtures/detect/*.txt (60 sentences each, written for this project). A short text is a
sentence's first N words with its punctuation stripped. A detector missing from the environment is skipped.
Accuracy is the share of texts whose top language is right; ms/text is the mean over all texts after the
models are loaded (load time reported apart).
"""

from __future__ import annotations

import argparse
import gzip
import platform
import sys
import time
from pathlib import Path

from translate.files import write_json, write_text

ROOT = Path(__file__).resolve().parents[1]

LANGS = ["en", "es", "fr", "it", "pt"]


def lingua_detector():
    from translate.service.detect import Detector

    d = Detector(LANGS)
    return lambda text: d.detect(text)[0]["language"]


def langdetect_detector():
    from langdetect import DetectorFactory, detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0  # otherwise random

    def detect(text: str) -> str:
        try:
            found = [x for x in detect_langs(text) if x.lang in LANGS]
        except LangDetectException:
            return "en"
        return found[0].lang if found else "en"

    return detect


def py3langid_detector():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident.set_languages(LANGS)
    return lambda text: ident.classify(text)[0]


DETECTORS = {"lingua": lingua_detector, "langdetect": langdetect_detector, "py3langid": py3langid_detector}


def texts(verses: int) -> dict[str, list[str]]:
    with gzip.open(ROOT / "data/bible_es_en/test.tsv.gz", "rt", encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    head, pairs = rows[0], rows[1 : verses + 1 if verses else None]  # ref, es, en
    out = {lang: [p[head.index(lang)] for p in pairs] for lang in ("es", "en")}
    for lang in ("fr", "it", "pt"):
        out[lang] = (ROOT / f"tests/fixtures/detect/{lang}.txt").read_text(encoding="utf-8").splitlines()
    return out


def first_words(text: str, n: int) -> str:
    words = [w.strip(".,;:!?¿¡«»\"'()") for w in text.split()]
    return " ".join([w for w in words if w][:n])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--verses", type=int, default=0, help="test verses per side (es, en); 0: all")
    p.add_argument("--detectors", nargs="+", choices=list(DETECTORS), default=list(DETECTORS))
    p.add_argument("--out", default=str(ROOT / "reports/bench_detect.json"))
    args = p.parse_args(argv)
    data = texts(args.verses)
    kinds = {"sentence": lambda t: t, "3 words": lambda t: first_words(t, 3),
             "2 words": lambda t: first_words(t, 2), "1 word": lambda t: first_words(t, 1)}  # fmt: skip
    results = []
    for name in args.detectors:
        make = DETECTORS[name]
        t0 = time.perf_counter()
        try:
            detect = make()
            detect("warm up the models")
        except ImportError as e:
            print(f"{name}: skipped ({e})", file=sys.stderr)
            continue
        load = time.perf_counter() - t0
        row = {"detector": name, "load_s": round(load, 2), "accuracy": {}}
        n, spent = 0, 0.0
        for kind, cut in kinds.items():
            for lang, items in data.items():
                sample = [s for s in (cut(t) for t in items) if s]
                t0 = time.perf_counter()
                right = sum(detect(s) == lang for s in sample)
                spent += time.perf_counter() - t0
                n += len(sample)
                row["accuracy"][f"{kind}/{lang}"] = round(100 * right / len(sample), 1)
        row["ms_per_text"] = round(1000 * spent / n, 3)
        results.append(row)
        print(name, row, file=sys.stderr)
    meta = {"python": platform.python_version(), "machine": platform.processor() or platform.machine(),
            "counts": {k: len(v) for k, v in data.items()}, "command": " ".join(sys.argv)}  # fmt: skip
    write_json(args.out, {"meta": meta, "results": results})
    head = ["detector"] + [f"{k} {lang}" for k in kinds for lang in data] + ["ms/text", "load s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [r["detector"]] + [f'{r["accuracy"][f"{k}/{lang}"]:.1f}' for k in kinds for lang in data]
        lines.append("| " + " | ".join(cells + [f'{r["ms_per_text"]:.2f}', f'{r["load_s"]:.1f}']) + " |")
    write_text(Path(args.out).with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
