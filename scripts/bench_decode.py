"""Benchmark decoding: sentences/s and tokens/s for greedy and beam search, KV cache on and off, per model;
with --engines, our engine against CTranslate2 on one Transformer checkpoint, side by side.

    .venv/bin/python scripts/bench_decode.py                          # -> reports/bench_decode.{json,md}
    .venv/bin/python scripts/bench_decode.py --checkpoints runs/a/checkpoints/best.pt b.pt --repeats 3
    .venv/bin/python scripts/bench_decode.py --sentences 0 --beams 1 5 10 --device cuda
    .venv/bin/python scripts/bench_decode.py --engines --checkpoints best.pt --sentences 0 --threads 1 2 \
        --out reports/bench_engines.json                              # the engine comparison (see below)
    .venv/bin/python scripts/bench_decode.py --engines --checkpoints best.pt --repeat-guard 0  # plain search
    .venv/bin/python scripts/bench_decode.py --engines --checkpoints best.pt --repeat-guard 0 \
        --stopping k_ended                                            # ... and CTranslate2's stopping rule

Models: the given checkpoints; by default the newest best.pt per model class under runs/, and for a class
with no checkpoint an untrained model of conf/model/<name>.yaml (marked "untrained": it always decodes to
the length limit, which is a fair test of speed per token but not of speed per sentence).
Sentences: the first --sentences of the test split of each model's data config (0 = all), translated by
translate.search.translate_ids: token batches over length-sorted sentences, finished rows dropped.
Cache off = search(use_cache=False): the decoder re-reads the whole prefix with model.forward at every step,
as JoeyNMT and other toolkits without incremental decoding do. Both runs must give the same translations
(checked and reported). tokens/s counts the best hypothesis' subwords plus EOS. Times are the best of
--repeats runs after a warm-up batch.

--engines: one Transformer checkpoint (the first of --checkpoints, else the newest Transformer best.pt) is
exported to CTranslate2 (float32, int8, int8_float32; int8_float32 is left out when its model.bin is the
same file as int8's), then for every --threads, every --beams and every engine (ours fp32, ours PyTorch
dynamic int8, CTranslate2 per export) a fresh subprocess loads only that engine, warms up, translates the
test sentences (the best of --repeats) and reports sentences/s, target tokens/s, BLEU and chrF (sacrebleu),
the share of sentences identical to ours fp32, its own peak RSS (VmHWM) and the model's size on disk (ours:
the state_dict as torch.save writes it; CTranslate2: model.bin). Peak RSS includes the interpreter with
torch imported, as every engine process imports it (rss_after_imports_mib in the JSON). The search settings
are SearchConfig's defaults (alpha, length limit, batch tokens) at each beam size. Each CTranslate2 row
names the compute type CTranslate2 really ran (Translator.compute_type) where it differs from the export:
int16 runs as int8 off Intel MKL (AMD and ARM CPUs), float16 as float32 on CPUs without float16 arithmetic
(translate/engines/README.md, "What each quantization runs as").

--marian [DIR]: the same comparison on an OPUS-MT-sized Marian model, with transformers' generate() as one
more engine ("hf"): DIR is a transformers MarianMTModel directory, by default a random-weight one of
OPUS-MT's size built once under --cache-dir (scripts/bench_marian.py). It is imported with
`translate import marian` and exported to CTranslate2; every engine decodes to one fixed length
(alpha 0, max_len_a 0, max_len_b --max-len-b), the settings generate() takes one to one. Defaults there:
greedy and beam 4, 1 and 2 threads.

    .venv/bin/python scripts/bench_decode.py --marian --sentences 100 --out reports/bench_marian.json
"""

from __future__ import annotations

# ruff: noqa: E402 (allocator.preload() comes before the other imports)
from translate import allocator

if __name__ == "__main__":
    allocator.preload()  # first: re-executes under mimalloc before torch is imported (translate/allocator.py)

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]

from translate.data.config import CACHE_DIR, compose_data_config  # noqa: E402
from translate.data.pipeline import prepare_data  # noqa: E402
from translate.device import resolve_device  # noqa: E402
from translate.files import write_json, write_text  # noqa: E402
from translate.machine import describe_cpu, peak_rss_mib  # noqa: E402
from translate.models.build import build_model  # noqa: E402
from translate.models.checkpoint import load_checkpoint, load_model, model_label  # noqa: E402
from translate.search import SearchConfig, translate_ids  # noqa: E402
from translate.search.config import STOPPINGS  # noqa: E402

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
        data_cfg = compose_data_config("bible_es_en")
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
            search = SearchConfig(beam_size=beam, batch_tokens=args.batch_tokens)
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


ENGINES = ("torch", "torch-int8", "ct2-float32", "ct2-int8", "ct2-int8_float32")
CT2_QUANTIZATIONS = ("float32", "int8", "int8_float32")


def engine_checkpoint(args) -> Path:
    if args.checkpoints:
        return Path(args.checkpoints[0])
    found = newest_per_class().get("Transformer")
    if found is None:
        raise SystemExit("bench_decode --engines: no Transformer checkpoint: pass --checkpoints best.pt")
    return found


def export_ct2_models(ckpt: Path, export_dir: Path) -> tuple[dict[str, Path], list[str]]:
    """{engine label: model dir} for the CTranslate2 exports, and notes on the ones left out."""
    from translate.engines.ct2_export import export_ct2

    dirs, digests, notes = {}, {}, []
    for q in CT2_QUANTIZATIONS:
        out = export_ct2(ckpt, export_dir / f"ct2-{q}", q, force=True)
        digest = hashlib.sha256((out / "model.bin").read_bytes()).hexdigest()
        same = [label for label, d in digests.items() if d == digest]
        if same:
            notes.append(f"ct2-{q} left out: its model.bin is the same file as {same[0]}'s")
            continue
        digests[f"ct2-{q}"], dirs[f"ct2-{q}"] = digest, out
    return dirs, notes


def worker(job_file: str) -> int:
    """One engine in its own process: load, warm up, translate, score; the result JSON goes to job[result]."""
    from translate.engines import load_engine
    from translate.metrics.bleu import corpus_scores

    job = json.loads(Path(job_file).read_text())
    torch.set_num_threads(job["threads"])
    rss_start = peak_rss_mib()  # the interpreter, torch and translate imported
    data = json.loads(Path(job["data"]).read_text())
    if job["engine"] == "hf":  # transformers' generate(), --marian
        from bench_marian import GenerateEngine

        engine = GenerateEngine(job["path"], job["checkpoint"])
    else:
        engine = load_engine(
            job["engine"], job["path"], device="cpu", quantize=job["quantize"], threads=job["threads"],
            shortlist=job.get("shortlist"),
        )
    search = SearchConfig(beam_size=job["beam"], batch_tokens=job["batch_tokens"], **job["search"])
    engine.translate_ids(data["src_ids"][:8], search)  # warm-up
    seconds, hyps = timed(lambda: engine.translate_ids(data["src_ids"], search), job["repeats"])
    peak_rss = peak_rss_mib()
    ids = [h[0].tokens for h in hyps]
    scores = corpus_scores([engine.tokenizer.decode(t, "tgt") for t in ids], data["refs"])
    if job["engine"] == "ct2":
        size = (Path(job["path"]) / "model.bin").stat().st_size
    else:
        with tempfile.TemporaryFile() as f:
            torch.save(engine.model.state_dict(), f)
            size = f.tell()
    tokens = sum(len(t) + 1 for t in ids)
    result = {
        "seconds": seconds,
        "sentences_per_s": len(ids) / seconds,
        "tokens_per_s": tokens / seconds,
        "output_tokens": tokens,
        "bleu": scores["bleu"],
        "chrf": scores["chrf"],
        "bleu_signature": scores["bleu_signature"],
        "peak_rss_mib": peak_rss,
        "rss_after_imports_mib": rss_start,
        "model_mib": size / 2**20,
        "compute_type": engine.info["compute_type"] if job["engine"] == "ct2" else None,  # CTranslate2 ran
        "ids": ids,
    }
    Path(job["result"]).write_text(json.dumps(result))
    return 0


def run_engine(job: dict, tmp: Path) -> dict:
    job_file, job["result"] = tmp / "job.json", str(tmp / "result.json")
    job_file.write_text(json.dumps(job))
    env = {**os.environ, "OMP_NUM_THREADS": str(job["threads"]), "PYTHONPATH": f"{ROOT}:{ROOT / 'scripts'}"}
    done = subprocess.run([sys.executable, __file__, "--worker", str(job_file)], env=env, cwd=Path.cwd())
    if done.returncode != 0:
        raise SystemExit(f"bench_decode --engines: the {job['label']} worker failed (exit {done.returncode})")
    return json.loads(Path(job["result"]).read_text())


def bench_engines(args, ckpt: Path | None = None, extra: dict | None = None, search: dict | None = None):
    """extra: more engines, {label: (path, quantize)}; search: SearchConfig fields all engines decode with."""
    ckpt = ckpt or engine_checkpoint(args)
    search = search or {}
    model, tok, c = load_model(ckpt, "cpu")
    wants_ct2 = any(e.startswith("ct2") for e in args.engine_list)  # RNNs: ours fp32 and dynamic int8 only
    if wants_ct2 and type(model).__name__ != "Transformer":
        raise SystemExit(
            f"bench_decode --engines: {ckpt} is a {type(model).__name__}; CTranslate2 needs a Transformer "
            "(--engines torch torch-int8 compares ours fp32 and dynamic int8 on any model)"
        )
    data_cfg = OmegaConf.create(c["config"]["data"])
    test = prepare_data(data_cfg, args.cache_dir, splits=("test",), tokenizer=tok).datasets["test"]
    n = args.sentences or len(test)
    data = {"src_ids": [list(r) for r in test["src_ids"][:n]], "refs": list(test["tgt"][:n])}
    del model
    with tempfile.TemporaryDirectory(prefix="bench_engines.") as tmp:
        tmp = Path(tmp)
        (tmp / "data.json").write_text(json.dumps(data))
        ct2_dirs, notes = {}, []
        if wants_ct2:
            ct2_dirs, notes = export_ct2_models(ckpt, Path(args.export_dir) if args.export_dir else tmp)
        engines = {
            "torch": (ckpt, "none"),
            "torch-int8": (ckpt, "int8"),
            **{f"{label}-shortlist": (ckpt, q) for label, q in (("torch", "none"), ("torch-int8", "int8"))
               if args.shortlist},  # the same engines over a vocabulary shortlist
            **(extra or {}),
            **{k: (d, "none") for k, d in ct2_dirs.items()},
        }
        rows = []
        for threads in args.threads or [torch.get_num_threads()]:
            for beam in args.beams:
                base = None
                for label, (path, quantize) in engines.items():
                    if label not in args.engine_list:
                        continue
                    job = {
                        "label": label,
                        "engine": label.split("-")[0],
                        "path": str(path),
                        "quantize": quantize,
                        "threads": threads,
                        "beam": beam,
                        "data": str(tmp / "data.json"),
                        "repeats": args.repeats,
                        "batch_tokens": args.batch_tokens,
                        "search": search,
                        "checkpoint": str(ckpt),
                        "shortlist": args.shortlist if label.endswith("-shortlist") else None,
                    }
                    r = run_engine(job, tmp)
                    ids = r.pop("ids")
                    base = base or {"bleu": r["bleu"], "ids": ids}  # ours fp32 (torch) runs first
                    same = sum(a == b for a, b in zip(ids, base["ids"])) / len(ids)
                    rows.append(
                        {
                            "engine": label,
                            "threads": threads,
                            "search": "greedy" if beam == 1 else f"beam {beam}",
                            "beam_size": beam,
                            "sentences": len(ids),
                            **r,
                            "bleu_diff": r["bleu"] - base["bleu"],
                            "same_as_first": same,
                        }
                    )
                    print(
                        f"{label:>17} {threads} thr {rows[-1]['search']:>7}: "
                        f"{r['sentences_per_s']:7.1f} sent/s"
                        f" BLEU {r['bleu']:5.2f}  RSS {r['peak_rss_mib']:6.0f} MiB",
                        flush=True,
                    )
    import ctranslate2

    return {
        "cpu": describe_cpu(),
        "torch": torch.__version__,
        "ctranslate2": ctranslate2.__version__,
        "checkpoint": str(ckpt),
        "sentences": n,
        "repeats": args.repeats,
        "batch_tokens": args.batch_tokens,
        "search": {k: v for k, v in vars(SearchConfig(batch_tokens=args.batch_tokens, **search)).items()
                   if k not in ("beam_size", "nbest")},  # fmt: skip
        "load_average": os.getloadavg(),
        "notes": notes,
        "rows": rows,
    }


def engine_name(row: dict, names: dict) -> str:
    """"ours fp32", or "CTranslate2 int16 (runs int8_float32)" where CTranslate2 fell back on this CPU."""
    from translate.engines.ct2 import runs_as_exported

    if row["engine"] in names:
        return names[row["engine"]]
    quant, runs = row["engine"][4:], row["compute_type"]
    fell_back = runs is not None and not runs_as_exported(quant, runs)
    return f"CTranslate2 {quant}" + (f" (runs {runs})" if fell_back else "")


def engines_markdown(report: dict) -> str:
    s = report["search"]
    lines = [
        f"Decoding {report['sentences']} test sentences of {report['checkpoint']} on {report['cpu']}; torch "
        f"{report['torch']}, CTranslate2 {report['ctranslate2']}; best of {report['repeats']}; "
        f"alpha {s['alpha']}, "
        f"limit {s['max_len_a']} * source + {s['max_len_b']}, {s['batch_tokens']} source tokens per batch, "
        f"repeat_guard {s['repeat_guard']}, stopping {s.get('stopping', SearchConfig.stopping)}; "
        f"load average {report['load_average'][0]:.1f} at the end.",
        "",
        "| threads | search | engine | sent/s | target tok/s | BLEU | BLEU diff | chrF "
        "| same output as ours fp32 | peak RSS MiB | model MiB |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    names = {"torch": "ours fp32", "torch-int8": "ours dynamic int8", "hf": "transformers generate()",
             "torch-shortlist": "ours fp32 + shortlist",
             "torch-int8-shortlist": "ours dynamic int8 + shortlist"}
    for r in report["rows"]:
        lines.append(
            f"| {r['threads']} | {r['search']} | {engine_name(r, names)} "
            f"| {r['sentences_per_s']:.1f} | {r['tokens_per_s']:.0f} | {r['bleu']:.2f} "
            f"| {r['bleu_diff']:+.2f} | {r['chrf']:.2f} | {100 * r['same_as_first']:.1f} % "
            f"| {r['peak_rss_mib']:.0f} | {r['model_mib']:.1f} |"
        )
    lines += ["", *[f"- {note}" for note in report["notes"]]]
    return "\n".join(lines).rstrip() + "\n"


def bench_marian_engines(args, p) -> int:
    """--marian: ours fp32 and int8, generate(), CTranslate2 float32 and int8 on one Marian model."""
    from bench_marian import build_opus_sized  # beside this script: scripts/ is sys.path[0] when it runs

    from translate.importer import main as import_main

    cache = Path(args.cache_dir) / "bench_marian"
    if args.marian:
        directory = Path(args.marian)
    else:
        bible = compose_data_config("bible_es_en")
        train = prepare_data(bible, args.cache_dir, splits=("train",)).datasets["train"]
        directory = build_opus_sized(cache / "opus-sized", (list(train["src"]), list(train["tgt"])))
    ckpt = cache / f"{directory.name}.pt"
    if not ckpt.is_file() and import_main(["marian", str(directory), "-o", str(ckpt)]) != 0:
        return 2
    args.engine_list = ["torch", "torch-int8", "hf", "ct2-float32", "ct2-int8"]
    if args.beams == p.get_default("beams"):
        args.beams = [1, 4]
    args.threads = args.threads or [1, 2]
    search = {"alpha": 0.0, "max_len_a": 0.0, "max_len_b": args.max_len_b}
    report = bench_engines(args, ckpt, {"hf": (directory, "none")}, search)
    report["marian"] = str(directory)
    write_engines_report(report, Path(args.out if args.out != p.get_default("out")
                                      else "reports/bench_marian.json"))  # fmt: skip
    return 0


def write_engines_report(report: dict, out: Path) -> None:
    """The engines comparison as JSON at `out` and a Markdown table beside it (printed too)."""
    write_json(out, report)
    table = engines_markdown(report)
    write_text(out.with_suffix(".md"), table)
    print("\n" + table + f"\nwritten: {out}, {out.with_suffix('.md')}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoints", nargs="*", default=[], help="default: newest best.pt per model class")
    p.add_argument("--sentences", type=int, default=100, help="test sentences per model (0 = all)")
    p.add_argument("--beams", type=int, nargs="+", default=[1, SearchConfig.beam_size],
                   help="beam sizes (1 = greedy)")  # fmt: skip
    p.add_argument("--batch-tokens", type=int, default=SearchConfig.batch_tokens,
                   help="source tokens per batch")  # fmt: skip
    p.add_argument("--repeats", type=int, default=1, help="timed runs per setting (the best counts)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, nargs="+", default=[],
                   help="CPU threads (default: torch's); --engines runs each, else the first")  # fmt: skip
    p.add_argument("--engines", nargs="*", dest="engine_list", default=None, metavar="ENGINE",
                   help=f"compare engines (default all: {' '.join(ENGINES)})")  # fmt: skip
    p.add_argument("--export-dir", help="--engines: keep the CTranslate2 exports here (default: a temp dir)")
    p.add_argument("--shortlist", metavar="FILE",
                   help="--engines: ours fp32 and int8 once more over this vocabulary shortlist")  # fmt: skip
    p.add_argument("--repeat-guard", type=int, default=None, metavar="R",
                   help="--engines: SearchConfig.repeat_guard for every engine (0 = plain search, the same "
                   "algorithm in CTranslate2's beam; default: SearchConfig's)")  # fmt: skip
    p.add_argument("--stopping", choices=STOPPINGS, default=None,
                   help="--engines: SearchConfig.stopping for every engine (k_ended: CTranslate2's own rule "
                   "in ours too; default: SearchConfig's)")  # fmt: skip
    p.add_argument("--marian", nargs="?", const="", default=None, metavar="DIR",
                   help="compare engines on a Marian model (default: random, OPUS-MT-sized)")  # fmt: skip
    p.add_argument("--max-len-b", type=int, default=32, help="--marian: the fixed output length limit")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--cache-dir", default=CACHE_DIR)
    p.add_argument(
        "--out", default="reports/bench_decode.json", help="JSON; the markdown table goes beside it"
    )
    return p


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.worker:
        return worker(args.worker)
    if args.marian is not None:
        return bench_marian_engines(args, p)
    if args.engine_list is not None:
        args.engine_list = args.engine_list or list(ENGINES)
        unknown = sorted(set(args.engine_list) - set(ENGINES))
        if unknown:
            p.error(f"--engines: unknown {' '.join(unknown)} (choose from {' '.join(ENGINES)})")
        if "torch" not in args.engine_list:
            p.error("--engines: include torch (ours fp32): the BLEU diff and same-output columns use it")
        if args.shortlist:  # ours fp32 and int8 a second time, over the shortlist
            args.engine_list += [f"{e}-shortlist" for e in ("torch", "torch-int8") if e in args.engine_list]
        fields = {"repeat_guard": args.repeat_guard, "stopping": args.stopping}
        report = bench_engines(args, search={k: v for k, v in fields.items() if v is not None})
        write_engines_report(report, Path(args.out if args.out != p.get_default("out")
                                          else "reports/bench_engines.json"))  # fmt: skip
        return 0
    if args.threads:
        torch.set_num_threads(args.threads[0])
    rows = []
    for e in load_models(args):
        rows += bench_model(e, args)
    device = resolve_device(args.device)
    cpu = platform.processor() or platform.machine() or "cpu"
    report = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else cpu,
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
