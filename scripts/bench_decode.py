"""Benchmark decoding: sentences/s and tokens/s for greedy and beam search, KV cache on and off, per model.

    .venv/bin/python scripts/bench_decode.py                          # -> reports/bench_decode.{json,md}
    .venv/bin/python scripts/bench_decode.py --checkpoints runs/a/checkpoints/best.pt b.pt --repeats 3
    .venv/bin/python scripts/bench_decode.py --sentences 0 --beams 1 5 10 --device cuda

Models: the given checkpoints; by default the newest best.pt per model class under runs/, and for a class
with no checkpoint an untrained model of conf/model/<name>.yaml (marked "untrained": it always decodes to
the length limit, which is a fair test of speed per token but not of speed per sentence).
Sentences: the first --sentences of the test split of each model's data config (0 = all), translated by
translate.search.translate_ids: token batches over length-sorted sentences, finished rows dropped.
Cache off = search(use_cache=False): the decoder re-reads the whole prefix with model.forward at every step,
as JoeyNMT and other toolkits without incremental decoding do. Both runs must give the same translations
(checked and reported). tokens/s counts the best hypothesis' subwords plus EOS. Times are the best of
--repeats runs after a warm-up batch.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from translate.data.pipeline import prepare_data  # noqa: E402
from translate.evaluation.checkpoints import model_label, resolve_device  # noqa: E402
from translate.files import write_json, write_text  # noqa: E402
from translate.models.build import build_model  # noqa: E402
from translate.models.checkpoint import load_checkpoint, load_model  # noqa: E402
from translate.search import SearchConfig, translate_ids  # noqa: E402

DEFAULT_MODELS = ("rnnencdec", "rnnsearch", "transformer")


def newest_per_class(roots=("runs", "outputs")) -> dict[str, Path]:
    """{model class name: newest best.pt} over every run below roots."""
    found: dict[str, Path] = {}
    paths = [p for r in roots if Path(r).is_dir() for p in Path(r).rglob("checkpoints/best.pt")]
    for p in sorted(paths, key=lambda p: p.stat().st_mtime):
        try:
            found[model_label(load_checkpoint(p), p)] = p
        except ValueError:
            continue
    return found


def load_models(args) -> list[dict]:
    """[{label, model, tokenizer, data_cfg, checkpoint}] from --checkpoints, runs/, or untrained configs."""
    device = resolve_device(args.device)
    entries = []
    paths = [Path(p) for p in args.checkpoints] if args.checkpoints else []
    if not paths:
        have = newest_per_class()
        for name in DEFAULT_MODELS:
            cfg = OmegaConf.load(ROOT / "conf/model" / f"{name}.yaml")
            label = cfg._target_.rsplit(".", 1)[-1]
            if label in have:
                paths.append(have[label])
            else:
                entries.append({"label": f"{label} (untrained)", "model_cfg": cfg, "checkpoint": None})
    for p in paths:
        model, tok, ckpt = load_model(p, device)
        data_cfg = OmegaConf.create(ckpt["config"]["data"])
        entries.append({"label": model_label(ckpt, p), "model": model, "tokenizer": tok, "data_cfg": data_cfg,
                        "checkpoint": str(p)})  # fmt: skip
    untrained = [e for e in entries if "model" not in e]
    if untrained:
        data_cfg = OmegaConf.load(ROOT / "conf/data/bible_es_en.yaml")
        tok = prepare_data(data_cfg, args.cache_dir, splits=("train",)).tokenizer
        for e in untrained:
            torch.manual_seed(0)
            e["model"] = build_model(e.pop("model_cfg"), tok.src_vocab_size, tok.tgt_vocab_size, tok.shared)
            e["model"].to(device).eval()
            e.update(tokenizer=tok, data_cfg=data_cfg)
    return entries


def timed(fn, repeats: int):
    best, out = float("inf"), None
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, out


def bench_model(e: dict, args) -> list[dict]:
    test = prepare_data(e["data_cfg"], args.cache_dir, splits=("test",), tokenizer=e["tokenizer"]).datasets[
        "test"
    ]
    src = list(test["src_ids"])[: args.sentences or None]
    rows = []
    for beam in args.beams:
        outputs = {}
        for cache in (True, False):
            search = SearchConfig(beam_size=beam, max_tokens=args.max_tokens)
            translate_ids(e["model"], src[:8], search, use_cache=cache)  # warm-up
            seconds, hyps = timed(
                lambda: translate_ids(e["model"], src, search, use_cache=cache), args.repeats  # noqa: B023
            )
            outputs[cache] = [h[0].tokens for h in hyps]
            tokens = sum(len(t) + 1 for t in outputs[cache])
            rows.append({
                "model": e["label"], "checkpoint": e["checkpoint"], "parameters": e["model"].num_parameters(),
                "search": "greedy" if beam == 1 else f"beam {beam}", "beam_size": beam, "kv_cache": cache,
                "sentences": len(src), "output_tokens": tokens, "seconds": seconds,
                "sentences_per_s": len(src) / seconds, "tokens_per_s": tokens / seconds,
            })  # fmt: skip
            r = rows[-1]
            speed = f"{r['sentences_per_s']:8.1f} sent/s {r['tokens_per_s']:9.1f} tok/s"
            print(f"{e['label']:>24} {r['search']:>7} cache {'on ' if cache else 'off'}: {speed}", flush=True)
        same = outputs[True] == outputs[False]
        rows[-1]["same_output"] = rows[-2]["same_output"] = same
        rows[-2]["speedup"] = rows[-1]["seconds"] / rows[-2]["seconds"]
    return rows


def markdown(report: dict) -> str:
    n = report["rows"][0]["sentences"] if report["rows"] else 0
    lines = [
        f"Decoding speed on {report['device']} (torch {report['torch']}, {report['threads']} threads), "
        f"{n} test sentences, best of {report['repeats']}.",
        "",
        "| model | search | sent/s cache on | sent/s cache off | tok/s cache on | tok/s cache off "
        "| cache speed-up | same output |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    rows = report["rows"]
    for on, off in zip(rows[::2], rows[1::2]):
        lines.append(
            f"| {on['model']} | {on['search']} | {on['sentences_per_s']:.1f} | {off['sentences_per_s']:.1f} "
            "| "
            f"{on['tokens_per_s']:.0f} | {off['tokens_per_s']:.0f} | {on['speedup']:.2f}x | "
            f"{'yes' if on['same_output'] else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoints", nargs="*", default=[], help="default: newest best.pt per model class")
    p.add_argument("--sentences", type=int, default=100, help="test sentences per model (0 = all)")
    p.add_argument("--beams", type=int, nargs="+", default=[1, 5], help="beam sizes (1 = greedy)")
    p.add_argument("--max-tokens", type=int, default=4000, help="source tokens per batch")
    p.add_argument("--repeats", type=int, default=1, help="timed runs per setting (the best counts)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--cache-dir", default=".cache/translate")
    p.add_argument(
        "--out", default="reports/bench_decode.json", help="JSON; the markdown table goes beside it"
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for e in load_models(args):
        rows += bench_model(e, args)
    device = resolve_device(args.device)
    cpu = platform.processor() or platform.machine() or "cpu"
    report = {
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else cpu,
        "torch": torch.__version__, "threads": torch.get_num_threads(), "repeats": args.repeats, "rows": rows,
    }  # fmt: skip
    out = Path(args.out)
    write_json(out, report)
    table = markdown(report)
    write_text(out.with_suffix(".md"), table)
    print("\n" + table + f"\nwritten: {out}, {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
