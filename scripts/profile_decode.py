"""Profile our decoding of the test verses: where a beam or greedy step's time goes, by stage and by op.

    taskset -c 1 .venv/bin/python scripts/profile_decode.py --checkpoint best.pt --sentences 300 --beam 5 \
        --threads 1 --out reports/profile_beam5.txt

Two passes over the same sentences after a warm-up batch, each through TorchEngine.translate_ids (the path
bench_decode.py --engines times): one under cProfile, reporting the cumulative time of the search's stages
(the model's step, step_logp, beam_step, the state reorder, the repetition guard, ...) as shares of the whole,
and one under torch.profiler, reporting the ops by their own time and by op and input shape. The stage
shares include cProfile's own overhead on the Python calls (the ops' time is not inflated).
"""

from __future__ import annotations

# ruff: noqa: E402 (allocator.preload() comes before the other imports)
from translate import allocator

if __name__ == "__main__":
    allocator.preload()

import argparse
import cProfile
import io
import pstats
import time
from pathlib import Path

import torch
from decode_setup import add_decode_args, decode_setup

from translate.files import write_text
from translate.machine import describe_cpu

STAGES = (  # (label, file suffix, function name) as cProfile names them
    ("model step (Stepper.step)", "search/stepper.py", "step"),
    ("state reorder (Stepper.reorder)", "search/stepper.py", "reorder"),
    ("step_logp (mask, log-softmax, guard)", "search/beam.py", "step_logp"),
    ("repeat guard (end_repeats)", "search/repetition.py", "end_repeats"),
    ("beam_step (top-k, ended, next beams)", "search/beam.py", "beam_step"),
    ("top_candidates (top-k)", "search/beam.py", "top_candidates"),
    ("can_stop", "search/beam.py", "can_stop"),
    ("token chooser (greedy arg-max)", "search/sampling.py", "__call__"),
    ("KV cache reorder (KVCache.reorder)", "attention/cache.py", "reorder"),
    ("cross-attention layout check (source_groups)", "models/transformer.py", "source_groups"),
)


def stage_table(stats: pstats.Stats, total: float) -> str:
    """The cumulative seconds of each stage function and its share of the whole run."""
    lines = ["| stage | seconds | share |", "|---|---:|---:|"]
    for label, suffix, name in STAGES:
        cum = sum(v[3] for (f, _, n), v in stats.stats.items() if f.endswith(suffix) and n == name)
        if cum:
            lines.append(f"| {label} | {cum:.2f} | {100 * cum / total:.1f} % |")
    lines.append(f"| whole translate_ids | {total:.2f} | 100 % |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_decode_args(p)
    p.add_argument("--rows", type=int, default=25, help="rows of each torch.profiler table")
    p.add_argument("--out", default="reports/profile_decode.txt")
    args = p.parse_args(argv)
    engine, src, search = decode_setup(args)

    start = time.perf_counter()
    plain = engine.translate_ids(src, search)
    seconds = time.perf_counter() - start
    prof = cProfile.Profile()
    start = time.perf_counter()
    prof.runcall(engine.translate_ids, src, search)
    profiled = time.perf_counter() - start
    stats = pstats.Stats(prof)
    top = io.StringIO()
    pstats.Stats(prof, stream=top).sort_stats("tottime").print_stats(20)

    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as tprof:
        again = engine.translate_ids(src, search)
    assert [h[0].tokens for h in again] == [h[0].tokens for h in plain], "profiled run decoded differently"
    order = "self_cpu_time_total"
    by_op = tprof.key_averages().table(sort_by=order, row_limit=args.rows)
    by_shape = tprof.key_averages(group_by_input_shape=True).table(sort_by=order, row_limit=args.rows)
    head = (
        f"{describe_cpu()}, torch {torch.__version__}, {args.threads} thread(s); {engine.describe()}; "
        f"{len(src)} test verses, beam {args.beam}, repeat_guard {args.repeat_guard}; "
        f"{seconds:.2f} s unprofiled ({len(src) / seconds:.1f} sent/s), {profiled:.2f} s under cProfile"
    )
    text = (f"{head}\n\nstages (cProfile, cumulative):\n{stage_table(stats, profiled)}\n\n"
            f"cProfile by own time:\n{top.getvalue()}\nops by own time:\n{by_op}\n"
            f"ops by input shape:\n{by_shape}\n")  # fmt: skip
    write_text(Path(args.out), text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
