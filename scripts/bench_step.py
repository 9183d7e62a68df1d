"""One decoding step at a fixed batch: ours against CTranslate2 float32, milliseconds per step per row count.

    .venv/bin/python scripts/bench_step.py --checkpoint runs/<run>/checkpoints/best.pt --rows 1 16 100 300
        # -> reports/bench_step.{json,md}

Why: bench_decode.py times whole test sets, where batches shrink as sentences end; this isolates the step.
Each row count gets random sources of --src-len pieces (EOS last); ours runs Transformer.encode and then
greedy steps (model.step, the arg-max of search/topk.py) with no row leaving, CTranslate2 runs
translate_batch with beam 1 and min_decoding_length = max_decoding_length. A step costs (time of
--steps + 1 steps - time of 1 step) / --steps, each time the best of --repeats, so the encoder cancels out;
its own cost is reported too (the 1-step time). One process, both engines on --threads threads.
"""

from __future__ import annotations

# ruff: noqa: E402 (allocator.preload() comes before the other imports)
from translate import allocator

if __name__ == "__main__":
    allocator.preload()

import argparse
import tempfile
import time
from pathlib import Path

import torch

from translate.data.vocab import BOS_ID, EOS_ID
from translate.engines.pytorch import TorchEngine
from translate.files import write_json, write_text
from translate.machine import describe_cpu
from translate.search.topk import argmax


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


@torch.no_grad()
def ours(model, src: torch.Tensor, steps: int) -> None:
    state = model.encode(src)
    tokens = torch.full((src.size(0),), BOS_ID)
    for _ in range(steps):
        logits, state = model.step(tokens, state)
        tokens = argmax(logits)  # (B,)


def theirs(translator, pieces: list[list[str]], steps: int) -> None:
    translator.translate_batch(pieces, beam_size=1, min_decoding_length=steps, max_decoding_length=steps,
                               max_input_length=0)  # fmt: skip


def measure(engine: TorchEngine, translator, vocab: list[str], rows: int, args) -> dict:
    """{rows, ours / ct2: (encode + 1 step ms, ms per step)} for one row count; vocab: the source pieces."""
    g = torch.Generator().manual_seed(rows)
    src = torch.randint(10, len(vocab), (rows, args.src_len), generator=g)
    src[:, -1] = EOS_ID
    pieces = [[vocab[i] for i in row[:-1].tolist()] for row in src]
    out = {"rows": rows}
    runs = {"ours": lambda n: ours(engine.model, src, n), "ct2": lambda n: theirs(translator, pieces, n)}
    for name, run in runs.items():
        run(2)  # warm-up
        one = best_of(lambda: run(1), args.repeats)  # noqa: B023 (called here, in this iteration)
        many = best_of(lambda: run(args.steps + 1), args.repeats)  # noqa: B023
        out[name] = {"first_ms": 1000 * one, "step_ms": 1000 * (many - one) / args.steps}
    out["ratio"] = out["ours"]["step_ms"] / out["ct2"]["step_ms"]
    return out


def markdown(report: dict) -> str:
    lines = [
        f"{report['cpu']}, torch {report['torch']}, CTranslate2 {report['ctranslate2']}, {report['threads']} "
        f"thread(s); {report['checkpoint']}; sources of {report['src_len']} pieces, {report['steps']} steps, "
        f"best of {report['repeats']}.",
        "",
        "| rows per step | ours ms / step | CTranslate2 float32 ms / step | ratio "
        "| encoder + 1 step, ours / CT2 ms |",
        "|---:|---:|---:|---:|---|",
    ]
    for r in report["rows"]:
        o, c = r["ours"], r["ct2"]
        lines.append(f"| {r['rows']} | {o['step_ms']:.2f} | {c['step_ms']:.2f} | {r['ratio']:.2f}x "
                     f"| {o['first_ms']:.1f} / {c['first_ms']:.1f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="a Transformer checkpoint")
    p.add_argument("--rows", type=int, nargs="+", default=[1, 16, 100, 300])
    p.add_argument("--src-len", type=int, default=30, help="source pieces per row (EOS included)")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="reports/bench_step.json")
    args = p.parse_args(argv)
    for name in ("src_len", "steps", "repeats", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if any(r < 1 for r in args.rows):
        p.error(f"--rows must be >= 1, got {args.rows}")
    import ctranslate2

    from translate.engines.ct2_export import export_ct2

    torch.set_num_threads(args.threads)
    engine = TorchEngine(args.checkpoint)
    with tempfile.TemporaryDirectory(prefix="bench_step.") as tmp:
        out = export_ct2(Path(args.checkpoint), Path(tmp) / "ct2", "float32")
        translator = ctranslate2.Translator(str(out), device="cpu", intra_threads=args.threads,
                                            inter_threads=1)  # fmt: skip
        vocab = [engine.tokenizer.id_to_piece(i, "src") for i in range(engine.tokenizer.src_vocab_size)]
        rows = [measure(engine, translator, vocab, r, args) for r in args.rows]
    report = {"cpu": describe_cpu(), "torch": torch.__version__, "ctranslate2": ctranslate2.__version__,
              "threads": args.threads, "checkpoint": args.checkpoint, "src_len": args.src_len,
              "steps": args.steps, "repeats": args.repeats, "rows": rows}  # fmt: skip
    table = markdown(report)
    write_json(Path(args.out), report)
    write_text(Path(args.out).with_suffix(".md"), table)
    print(table, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
