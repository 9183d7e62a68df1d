"""`make data`: build the data pipeline and print its figures per split.

  python -m translate.data.report [--data bible_es_en] [--max-tokens 4096] [--fresh] [--output FILE]
                                  [--write-readme] [override ...]     e.g. data.tokenizer.vocab_size=16000

Per split: pairs kept and removed by each filter, length percentiles (words and subwords, p50/p90/p99/max),
the padding share of the padded batch tensors at the token budget (bucketed, and unbucketed for
comparison), and the build time of each pipeline stage. --output writes the same figures as markdown;
--write-readme replaces the section "## Pipeline statistics (make data)" of data/README.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
from hydra.errors import HydraException

from translate.data.batching import TokenBatchSampler
from translate.data.config import CACHE_DIR, compose_data_config
from translate.data.corpus import PROJECT_ROOT
from translate.data.errors import DataError
from translate.data.pipeline import PreparedData, prepare_data
from translate.files import write_text

SECTION = "## Pipeline statistics (make data)"
PERCENTILES = (50, 90, 99, 100)


def percentiles(values: np.ndarray) -> list[int]:
    return [int(np.percentile(values, q, method="inverted_cdf")) for q in PERCENTILES]


def tensor_padding(src_len: np.ndarray, tgt_len: np.ndarray, batches: list[list[int]]) -> float:
    """PAD share of the src (B, S) and tgt_out (B, T) tensors of these batches (EOS counted as real)."""
    real = padded = 0
    for b in batches:
        s, t = src_len[b] + 1, tgt_len[b] + 1
        real += int(s.sum() + t.sum())
        padded += len(b) * int(s.max() + t.max())
    return 1.0 - real / padded


def split_figures(prepared: PreparedData, max_tokens: int, seed: int = 0) -> dict[str, dict]:
    out = {}
    for split, ds in prepared.datasets.items():
        table = ds.with_format("arrow")[:]
        words = {side: np.array([len(x.split()) for x in table.column(side).to_pylist()])
                 for side in ("src", "tgt")}
        subwords = {side: pc.list_value_length(table.column(f"{side}_ids")).to_numpy().astype(np.int64)
                    for side in ("src", "tgt")}
        lengths = np.maximum(subwords["src"], subwords["tgt"]) + 1
        padding = {}
        for name, bucket in (("bucketed", True), ("unbucketed", False)):
            sampler = TokenBatchSampler(lengths, max_tokens, shuffle=True, seed=seed, bucket=bucket)
            batches = sampler.all_batches(0)
            padding[name] = tensor_padding(subwords["src"], subwords["tgt"], batches)
            if bucket:
                padding["batches"] = len(batches)
        stats = prepared.stats["splits"][split]
        out[split] = {
            "pairs": stats["pairs"],
            "removed": stats["removed"],
            "words": {side: percentiles(v) for side, v in words.items()},
            "subwords": {side: percentiles(v) for side, v in subwords.items()},
            "padding": padding,
        }
    return out


def render(prepared: PreparedData, figures: dict, max_tokens: int, markdown: bool) -> str:
    st = prepared.stats
    src, tgt = st["src_lang"], st["tgt_lang"]
    tok = st["tokenizer"]
    kind = "joint" if tok["shared"] else "per-language"
    vocab = str(tok["src_vocab_size"])
    if not tok["shared"]:
        vocab += f"/{tok['tgt_vocab_size']}"
    secs = st["seconds"]
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in secs.items() if k != "total")
    head = (f"data={st['name']} ({src} -> {tgt}); tokenizer: {kind} SentencePiece, vocabulary {vocab} "
            f"({tok['source']}); batches of at most {max_tokens} tokens (padded)")
    build = f"build time: {secs['total']:.1f} s ({stages})"
    cols = ["split", "pairs", "removed: empty / max_len / ratio", f"{src} words", f"{tgt} words",
            f"{src} subwords", f"{tgt} subwords", "batches", "padding bucketed / unbucketed"]
    rows = []
    for split, f in figures.items():
        r = f["removed"]
        rows.append([
            split, str(f["pairs"]), f"{r['empty']} / {r['max_len']} / {r['ratio']}",
            *("/".join(map(str, f[unit][side])) for unit in ("words", "subwords") for side in ("src", "tgt")),
            str(f["padding"]["batches"]),
            f"{100 * f['padding']['bucketed']:.1f}% / {100 * f['padding']['unbucketed']:.1f}%",
        ])
    legend = "lengths: p50/p90/p99/max"
    if markdown:
        lines = [f"{head}.", "", f"| {' | '.join(cols)} |", "|" + "---|" * len(cols)]
        lines += [f"| {' | '.join(r)} |" for r in rows]
        return "\n".join([*lines, "", f"{legend[0].upper()}{legend[1:]}; {build}.", ""])
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    body = [fmt.format(*cols)] + [fmt.format(*r) for r in rows]
    return "\n".join([head, *body, legend, build])


def replace_section(readme: Path, body: str, command: str) -> None:
    """Swap the text under SECTION (up to the next '## ' heading) for body; append the section if absent."""
    if not readme.is_file():
        raise DataError(f"{readme}: no such file (--write-readme updates an existing README)")
    lines = readme.read_text(encoding="utf-8").splitlines()
    new = [SECTION, "", f"Measured with `{command}`:", "", *body.rstrip("\n").splitlines(), ""]
    if SECTION in lines:
        start = lines.index(SECTION)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines[start:end] = new
    else:
        lines += ["", *new]
    write_text(readme, "\n".join(lines).rstrip("\n") + "\n")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m translate.data.report", description=__doc__.splitlines()[0])
    p.add_argument("--data", default="bible_es_en", help="data config: conf/data/<name>.yaml")
    p.add_argument("--max-tokens", type=int, default=4096, help="token budget per batch (padded)")
    p.add_argument("--cache-dir", type=Path, default=Path(CACHE_DIR))
    p.add_argument("--fresh", action="store_true", help="build in an empty cache, so times are from scratch")
    p.add_argument("--output", type=Path, help="also write the figures as markdown to this file")
    p.add_argument("--write-readme", action="store_true", help=f"replace '{SECTION}' in --readme")
    p.add_argument("--readme", type=Path, default=PROJECT_ROOT / "data" / "README.md")
    p.add_argument("overrides", nargs="*", help="data config overrides, e.g. data.filters.max_len=80")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = compose_data_config(args.data, args.overrides)
        with tempfile.TemporaryDirectory(prefix="translate-data-") as tmp:
            t0 = time.perf_counter()
            prepared = prepare_data(cfg, tmp if args.fresh else args.cache_dir.absolute())
            prepared.stats["seconds"]["total"] = time.perf_counter() - t0
            figures = split_figures(prepared, args.max_tokens)  # inside: the datasets map files in tmp
        print(render(prepared, figures, args.max_tokens, markdown=False))
        md = render(prepared, figures, args.max_tokens, markdown=True)
        if args.output:
            write_text(args.output, md)
        if args.write_readme:
            given = argv if argv is not None else sys.argv[1:]
            command = " ".join(["python -m translate.data.report", *given])
            replace_section(args.readme, md, command)
    except (DataError, HydraException) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
