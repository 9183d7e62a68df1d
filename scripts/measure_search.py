"""Measure search settings on one checkpoint: BLEU, chrF, the share of repeating outputs and decoding time, on
the test verses, the dev verses and the everyday sentences (data/everyday/es_en.tsv); with --glossary, the
term success rate and BLEU with the glossary against without. The glossary is used as one built from the
reference: per sentence, the terms whose source side the source holds and whose target side the reference
holds are enforced and scored (a term the reference translates otherwise would cost BLEU for no reason).

    .venv/bin/python scripts/measure_search.py --checkpoint runs/<run>/checkpoints/best.pt --sets dev everyday
        # -> reports/measure_search.{json,md}: the repetition grid (SETTINGS) on dev and everyday, and the
        #    setting the rule (choose) picks from dev; reports/measure_search_hypotheses.json: every output
    .venv/bin/python scripts/measure_search.py --checkpoint ... --settings off default --sets test everyday
        # no repetition control against the defaults (SearchConfig()) on the test verses
    .venv/bin/python scripts/measure_search.py --checkpoint ... --glossary reports/glossary.tsv --sets test
        # adds a glossary row: term success, BLEU, decode time (see scripts/build_glossary.py)

A setting is a comma-separated list of SearchConfig overrides ("no_repeat_ngram_size=3,repeat_guard=3") of the
defaults; "default" is SearchConfig() itself, "off" the defaults with every repetition control off (and
"off,beam_size=1" that with one change). Repeating outputs: translate.metrics.terms.repetition_rate (a word or
a pair of words 3+ times in a row, or a character 4+ times). Times are one run each, on whatever else the
machine runs (stated in the report with the CPU): compare them within one run only.
"""

from __future__ import annotations

import argparse
import csv
import time
from dataclasses import asdict, fields, replace
from pathlib import Path

import torch
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]

from translate.data.config import CACHE_DIR  # noqa: E402
from translate.data.pipeline import prepare_data  # noqa: E402
from translate.engines import load_engine  # noqa: E402
from translate.files import write_json, write_text  # noqa: E402
from translate.machine import describe_cpu  # noqa: E402
from translate.metrics.bleu import corpus_scores  # noqa: E402
from translate.metrics.terms import has_word, repetition_rate, term_success  # noqa: E402
from translate.search import SearchConfig  # noqa: E402
from translate.search.config import REPETITION_OFF  # noqa: E402
from translate.search.glossary import Glossary, read_glossary  # noqa: E402

EVERYDAY = ROOT / "data" / "everyday" / "es_en.tsv"
OFF = REPETITION_OFF  # the setting "off"
# The repetition grid: no_repeat_ngram_size 0/3/4 x repetition_penalty 1.0/1.1/1.2 x repeat_guard off/3, each
# setting from "off" (so it names every control it turns on), the single controls first: an interrupted run
# (the report is rewritten after each setting) has them.
GRID = [(n, p, g) for n in (0, 3, 4) for p in (1.0, 1.1, 1.2) for g in (0, 3)]
SETTINGS = tuple(
    ",".join(["off", *(f"{k}={v}" for k, v in zip(OFF, c) if v != OFF[k])])
    for c in sorted(GRID, key=lambda c: (c[0] != 0) + (c[1] != 1.0) + (c[2] != 0))
)
BLEU_MARGIN = 0.2  # choose(): settings within this much dev BLEU of the best are candidates


def parse_setting(text: str, base: SearchConfig) -> SearchConfig:
    """"a=1,b=x" -> base with those fields (typed by SearchConfig's field types); "default" is base itself,
    "off" base with every repetition control off, "off,a=1" that with a=1."""
    parts = [p for p in text.split(",") if p not in ("default", "off")]
    kinds = {f.name: type(getattr(base, f.name)) for f in fields(SearchConfig)}
    changes = dict(OFF) if "off" in text.split(",") else {}
    for part in parts:
        name, _, value = part.partition("=")
        if name not in kinds or not value:
            raise SystemExit(f"--settings {text!r}: {name!r} is not a SearchConfig field=value")
        changes[name] = kinds[name](value)
    try:
        return replace(base, **changes)
    except ValueError as e:
        raise SystemExit(f"--settings {text!r}: {e}") from None


def choose(rows: list[dict], on: str = "dev", margin: float = BLEU_MARGIN) -> dict | None:
    """The rule the defaults are chosen by: of the settings whose BLEU on `on` is within `margin` of the best
    there, the one with the fewest repeating outputs; a tie goes to the higher BLEU, then to the faster."""
    scored = [r for r in rows if on in r["sets"]]
    if not scored:
        return None
    best = max(r["sets"][on]["bleu"] for r in scored)
    near = [r for r in scored if r["sets"][on]["bleu"] >= best - margin]
    pick = min(near, key=lambda r: (r["sets"][on]["repeating"], -r["sets"][on]["bleu"],
                                    r["sets"][on]["seconds"]))  # fmt: skip
    return {"setting": pick["setting"], "set": on, "margin": margin, "best_bleu": best,
            "candidates": [r["setting"] for r in near]}  # fmt: skip


def everyday(tokenizer) -> dict:
    with EVERYDAY.open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if r]
    src = [r[0] for r in rows]
    return {"src": src, "tgt": [r[1] for r in rows], "src_ids": tokenizer.encode_batch(src, "src")}


def load_sets(engine, names, cache_dir, limit) -> dict[str, dict]:
    data_cfg = OmegaConf.create(dict(engine.data_config))
    splits = tuple(n for n in names if n in ("test", "dev"))
    sets = {}
    if splits:
        ds = prepare_data(data_cfg, cache_dir, splits=splits, tokenizer=engine.tokenizer).datasets
        for name in splits:
            d = ds[name]
            n = limit or len(d)
            sets[name] = {"src": list(d["src"][:n]), "tgt": list(d["tgt"][:n]),
                          "src_ids": [list(r) for r in d["src_ids"][:n]]}  # fmt: skip
    if "everyday" in names:
        sets["everyday"] = everyday(engine.tokenizer)
    return sets


def reference_constraints(glossary, tokenizer, data) -> list[list[list[int]]]:
    """Per sentence the glossary's terms whose source side the source holds and whose target side its
    reference holds (a glossary "built from the reference")."""
    out = []
    for ids, ref in zip(data["src_ids"], data["tgt"]):
        used = Glossary(tuple((s, t) for s, t in glossary.terms if has_word(ref, t)))
        out.append(used.constraints(tokenizer, [ids])[0] if used.terms else [])
    return out


def measure(engine, data: dict, search: SearchConfig, glossary=None, enforce: bool = True) -> dict:
    """One setting on one set; glossary: its term success is scored (on the terms the reference uses), and
    enforced (those terms only) when `enforce`."""
    constraints = reference_constraints(glossary, engine.tokenizer, data) if glossary and enforce else None
    start = time.perf_counter()
    hyps = engine.translate_ids(data["src_ids"], search, constraints=constraints)
    seconds = time.perf_counter() - start
    texts = [engine.tokenizer.decode(h[0].tokens, "tgt") for h in hyps]
    scores = corpus_scores(texts, data["tgt"])
    row = {"bleu": scores["bleu"], "chrf": scores["chrf"], "repeating": repetition_rate(texts),
           "seconds": seconds, "sentences": len(texts), "hypotheses": texts}  # fmt: skip
    if glossary:
        hits, total = term_success(glossary.terms, data["src"], texts, data["tgt"])
        row.update(terms_produced=hits, term_occurrences=total, term_success=hits / total if total else None)
    return row


def markdown(report: dict) -> str:
    sets = report["sets"]
    head = "| setting | " + " | ".join(f"{s} BLEU | {s} chrF | {s} repeating | {s} s" for s in sets) + " |"
    lines = [f"Checkpoint `{report['checkpoint']}`, {report['cpu']}, {report['threads']} thread(s); "
             f"sentences: " + ", ".join(f"{s} {report['sizes'][s]}" for s in sets) + ".", "", head,
             "|---|" + "---:|" * (4 * len(sets))]  # fmt: skip
    for r in report["rows"]:
        cells = []
        for s in sets:
            m = r["sets"][s]
            rep = 100 * m["repeating"]
            cells.append(f"{m['bleu']:.2f} | {m['chrf']:.2f} | {rep:.1f}% | {m['seconds']:.1f}")
        lines.append(f"| {r['setting']} | " + " | ".join(cells) + " |")
    if report.get("choice"):
        c = report["choice"]
        lines += ["", f"Chosen by the rule (the fewest repeating {c['set']} outputs of the settings within "
                  f"{c['margin']} {c['set']} BLEU of the best, {c['best_bleu']:.2f}; ties: higher BLEU, then "
                  f"faster): `{c['setting']}`; candidates: "
                  + ", ".join(f"`{s}`" for s in c["candidates"]) + "."]
    if report.get("glossary"):
        g = report["glossary"]
        lines += ["", f"Glossary `{g['path']}` ({g['terms']} terms) on {g['set']}:", "",
                  "| | BLEU | chrF | terms produced | term success | decode s |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name in ("without", "with"):
            m = g[name]
            rate = "-" if m.get("term_success") is None else f"{100 * m['term_success']:.1f}%"
            lines.append(f"| {name} glossary | {m['bleu']:.2f} | {m['chrf']:.2f} | "
                         f"{m['terms_produced']} of {m['term_occurrences']} | {rate} | {m['seconds']:.1f} |")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--settings", nargs="+", default=list(SETTINGS))
    p.add_argument("--sets", nargs="+", default=["test", "dev", "everyday"],
                   choices=("test", "dev", "everyday"))  # fmt: skip
    p.add_argument("--sentences", type=int, default=0, help="first N of test/dev (0 = all)")
    p.add_argument("--glossary", help="a TSV glossary: measured with and without on the first of --sets")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cache-dir", default=CACHE_DIR)
    p.add_argument("--out", default="reports/measure_search.json")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    engine = load_engine("torch", args.checkpoint)
    sets = load_sets(engine, args.sets, args.cache_dir, args.sentences)
    base = SearchConfig()
    report = {"checkpoint": args.checkpoint, "cpu": describe_cpu(), "threads": args.threads,
              "sets": list(sets), "sizes": {k: len(v["src"]) for k, v in sets.items()},
              "rows": []}  # fmt: skip
    out = Path(args.out)
    hyps_out = out.with_name(out.stem + "_hypotheses.json")
    hypotheses: dict[str, dict[str, list[str]]] = {}
    for text in args.settings:
        search = parse_setting(text, base)
        row = {"setting": text, "search": asdict(search), "sets": {}}
        hypotheses[text] = {}
        for name, data in sets.items():
            row["sets"][name] = m = measure(engine, data, search)
            hypotheses[text][name] = m.pop("hypotheses")
            print(f"{text:40s} {name:9s} BLEU {m['bleu']:6.2f} repeating {100 * m['repeating']:5.1f}% "
                  f"{m['seconds']:7.1f} s", flush=True)  # fmt: skip
        report["rows"].append(row)
        report["choice"] = choose(report["rows"])
        write_report(out, report, hypotheses)  # after every setting: an interrupted run keeps its rows
    if args.glossary:
        glossary = read_glossary(args.glossary)
        name = next(iter(sets))
        without = measure(engine, sets[name], base, glossary, enforce=False)
        report["glossary"] = {"path": args.glossary, "terms": len(glossary), "set": name, "without": without,
                              "with": measure(engine, sets[name], base, glossary)}  # fmt: skip
        for m in (report["glossary"]["without"], report["glossary"]["with"]):
            m.pop("hypotheses")
        print(markdown(report).split("Glossary", 1)[1], flush=True)
    write_report(out, report, hypotheses)
    print(f"wrote {out}, {out.with_suffix('.md')} and {hyps_out}")
    return 0


def write_report(out: Path, report: dict, hypotheses: dict) -> None:
    write_json(out, report)
    write_text(out.with_suffix(".md"), markdown(report))
    write_json(out.with_name(out.stem + "_hypotheses.json"), hypotheses)


if __name__ == "__main__":
    raise SystemExit(main())
