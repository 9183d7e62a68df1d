"""Few-query attention at decoding's shapes on a CPU: our compiled kernel against PyTorch's SDPA and math.

    .venv/bin/python scripts/bench_decode_attention.py --shapes 16x40 100x41 300x30 20x40x5 --threads 1 2 \\
        --out reports/bench_decode_attention.json

A shape is ROWSxKEYS[xQUERIES]: rows of the batch, keys per row, queries per row (1: greedy and every
self-attention step; G: a beam's G queries of one source). Each call reads distinct keys and values (three
layers' worth, cycled), as a decoding step does, so they come from memory, not from cache; "read" is the time
PyTorch takes to sum them, the floor any kernel pays. Writes JSON and a markdown table (.md beside it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from translate.attention import cpu_decode
from translate.attention.functional import scaled_dot_product_math
from translate.files import write_json, write_text
from translate.machine import describe_cpu

LAYERS = 3  # distinct key/value sets cycled per timing


def timed(fn, min_time: float) -> float:
    """Microseconds per call of fn (one call = LAYERS attention calls), after two warm-up calls."""
    fn(), fn()
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < min_time or calls < 3:
        fn()
        calls += 1
    return elapsed / calls / LAYERS * 1e6


def bench(rows: int, keys: int, queries: int, heads: int, head_dim: int, min_time: float) -> dict:
    g = torch.Generator().manual_seed(0)
    q = torch.randn(rows, heads, queries, head_dim, generator=g)
    shape = (rows, heads, keys, head_dim)
    kv = [(torch.randn(shape, generator=g), torch.randn(shape, generator=g)) for _ in range(LAYERS)]
    mask = torch.arange(keys)[None, :] >= torch.randint(1, keys + 1, (rows,), generator=g)[:, None]  # (B,S)
    paths = {
        "sdpa": lambda k, v: cpu_decode.attend_reference(q, k, v, mask),
        "math": lambda k, v: scaled_dot_product_math(q, k, v, mask, False, None, 0.0, None),
        "read": lambda k, v: (k.sum(), v.sum()),
    }
    if cpu_decode.applies(q, *kv[0], mask, False, None, 0.0):
        paths["ours"] = lambda k, v: cpu_decode.attend(q, k, v, mask)
        torch.testing.assert_close(paths["ours"](*kv[0]), paths["sdpa"](*kv[0]), rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        us = {name: timed(lambda f=f: [f(k, v) for k, v in kv], min_time) for name, f in paths.items()}
    mib = 2 * kv[0][0].numel() * 4 / 2**20
    return {"rows": rows, "keys": keys, "queries": queries, "mib_per_call": mib, "us": us}


def table(results: list[dict], header: str) -> str:
    columns = "| threads | rows x keys x queries | MiB read | read us | PyTorch SDPA us | math us | ours us "
    lines = [header, "", columns + "| SDPA / ours |", "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        us = r["us"]
        ours = us.get("ours", float("nan"))
        shape = f"{r['rows']} x {r['keys']} x {r['queries']}"
        times = [f"{us[k]:.0f}" for k in ("read", "sdpa", "math")]
        cells = [r["threads"], shape, f"{r['mib_per_call']:.1f}", *times]
        lines.append("| " + " | ".join(map(str, cells)) + f" | {ours:.0f} | {us['sdpa'] / ours:.2f}x |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", nargs="+", default=["1x30", "16x40", "54x74", "100x41", "300x30", "20x40x5"])
    p.add_argument("--threads", type=int, nargs="+", default=[1])
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--min-time", type=float, default=0.3, help="seconds of repeats per timing")
    p.add_argument("--out", default="reports/bench_decode_attention.json")
    args = p.parse_args(argv)
    shapes = []
    for text in args.shapes:
        parts = text.lower().split("x")
        if len(parts) not in (2, 3) or not all(s.isdigit() and int(s) > 0 for s in parts):
            p.error(f"--shapes: {text!r} is not ROWSxKEYS[xQUERIES] with positive integers")
        shapes.append([int(s) for s in parts] + [1] * (3 - len(parts)))
    results = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for rows, keys, queries in shapes:
            r = bench(rows, keys, queries, args.heads, args.head_dim, args.min_time)
            results.append({"threads": threads, **r})
            print(table([results[-1]], "").splitlines()[-1], file=sys.stderr, flush=True)
    header = (f"{describe_cpu()}, torch {torch.__version__}, {args.heads} heads of {args.head_dim}, "
              f"kernel: {cpu_decode.status()}")  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, {"cpu": describe_cpu(), "torch": torch.__version__, "kernel": cpu_decode.status(),
                     "results": results})  # fmt: skip
    write_text(out.with_suffix(".md"), table(results, header))
    print(table(results, header), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
