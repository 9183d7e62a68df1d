"""A linear layer's product at decoding's row counts on a CPU: our compiled kernel against F.linear.

    .venv/bin/python scripts/bench_products.py --shapes 256x768 256x256 256x1024 1024x256 256x8000 \\
        --rows 1 4 16 100 1000 --threads 1 2 --out reports/bench_products.json

A shape is KxN: in features x out features (the default model's fused q, k, v 256x768, its other attention
products 256x256, the FFN's 256x1024 and 1024x256, the output projection 256x8000). Each timing cycles three
layers' weights; the smaller sets stay in the CPU's caches, where in a decoding step the KV cache read between
two products evicts them, so in context a product costs more (both paths). F.linear is what the layer
modules call (MKL's sgemm on an x86 torch), ours is models/cpu_linear.py over its packed panels. Writes JSON
and a markdown table (.md beside it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from bench_decode_attention import LAYERS, timed  # LAYERS weights cycled per timing
from torch import nn

from translate.files import write_json, write_text
from translate.machine import describe_cpu
from translate.models import cpu_linear


@torch.no_grad()
def bench(k: int, n: int, rows: int, min_time: float) -> dict:
    torch.manual_seed(0)
    layers = [nn.Linear(k, n).requires_grad_(False) for _ in range(LAYERS)]  # frozen, as load_model gives
    x = torch.randn(rows, k)
    paths = {"f_linear": lambda layer: F.linear(x, layer.weight, layer.bias)}
    packed = [cpu_linear.panel_set(layer, {"w": (layer,)}) for layer in layers]
    if packed[0] is not None:
        paths["ours"] = lambda layer: cpu_linear.linear(x, packed[layers.index(layer)]["w"])
        ours, theirs = paths["ours"](layers[0]), paths["f_linear"](layers[0])
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    us = {name: timed(lambda f=f: [f(layer) for layer in layers], min_time) for name, f in paths.items()}
    return {"in": k, "out": n, "rows": rows, "us": us}


def table(results: list[dict], header: str) -> str:
    columns = "| threads | rows | in x out | F.linear us | ours us | F.linear / ours | ours GFLOP/s |"
    lines = [header, "", columns, "|---:|---:|---|---:|---:|---:|---:|"]
    for r in results:
        ours = r["us"].get("ours", float("nan"))
        gflops = 2 * r["rows"] * r["in"] * r["out"] / ours / 1e3
        lines.append(f"| {r['threads']} | {r['rows']} | {r['in']} x {r['out']} | {r['us']['f_linear']:.0f} "
                     f"| {ours:.0f} | {r['us']['f_linear'] / ours:.2f}x | {gflops:.1f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", nargs="+", default=["256x768", "256x256", "256x1024", "1024x256", "256x8000"])
    p.add_argument("--rows", type=int, nargs="+", default=[1, 4, 16, 100, 1000])
    p.add_argument("--threads", type=int, nargs="+", default=[1])
    p.add_argument("--min-time", type=float, default=0.3, help="seconds of repeats per timing")
    p.add_argument("--out", default="reports/bench_products.json")
    args = p.parse_args(argv)
    shapes = []
    for text in args.shapes:
        parts = text.lower().split("x")
        if len(parts) != 2 or not all(s.isdigit() and int(s) > 0 for s in parts):
            p.error(f"--shapes: {text!r} is not KxN with positive integers")
        shapes.append([int(s) for s in parts])
    if any(r < 1 for r in args.rows) or any(t < 1 for t in args.threads):
        p.error(f"--rows and --threads must be >= 1, got {args.rows} and {args.threads}")
    results = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for rows in args.rows:
            for k, n in shapes:
                results.append({"threads": threads, **bench(k, n, rows, args.min_time)})
                print(table([results[-1]], "").splitlines()[-1], file=sys.stderr, flush=True)
    header = f"{describe_cpu()}, torch {torch.__version__}, kernel: {cpu_linear.status()}"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, {"cpu": describe_cpu(), "torch": torch.__version__, "kernel": cpu_linear.status(),
                     "results": results})  # fmt: skip
    write_text(out.with_suffix(".md"), table(results, header))
    print(table(results, header), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
