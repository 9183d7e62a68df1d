"""Compile every Triton kernel configuration the launchers choose for sm_80 and sm_90, without a GPU.

    .venv/bin/python scripts/compile_kernels.py                       # -> reports/compile_kernels.{json,md}
    .venv/bin/python scripts/compile_kernels.py --set flash --targets 90

Runs translate.attention.triton_compile in a subprocess without TRITON_INTERPRET (see its docstring: the
launchers' own tiles, the JIT's own specialisation, ptxas and cuobjdump from the triton wheel) and writes
one row per kernel launch: tiles, warps, stages, registers, spilled bytes, shared memory, compile seconds.
Exits 1 when a kernel fails to compile, goes over the target's shared memory or spills past the budget.
The CI test (tests/attention/test_triton_compile.py) compiles a representative subset (--set ci).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from translate.attention.triton_compile import SETS, SHARED_LIMIT, problems
from translate.files import write_json, write_text

ROOT = Path(__file__).resolve().parents[1]


def run(set_name: str, targets: list[int]) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # triton 3.9's default, set to silence its warning
    cmd = [sys.executable, "-m", "translate.attention.triton_compile", "--set", set_name, "--progress",
           "--targets", *map(str, targets)]  # fmt: skip
    done = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"compile_kernels: {' '.join(cmd)} failed (exit {done.returncode})")
    return json.loads(done.stdout)


def markdown(report: dict) -> str:
    lines = [
        f"Triton {report['triton']}, compiled for {', '.join(f'sm_{t}' for t in report['targets'])} "
        f"without a GPU (ptxas from the triton wheel); spill budget {report['spill_budget']} B.",
        "",
        "| case | kernel | sm | tiles | warps | stages | registers | spilled B | shared KiB | s |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["rows"]:
        tiles = " ".join(f"{k[6:]}={v}" for k, v in r["tiles"].items())
        if "error" in r:
            lines.append(f"| {r['case']} | {r['kernel']} | {r['cc']} | {tiles} | {r['num_warps']} "
                         f"| {r['num_stages']} | error: {r['error'][:120]} | | | |")  # fmt: skip
            continue
        lines.append(f"| {r['case']} | {r['kernel']} | {r['cc']} | {tiles} | {r['num_warps']} "
                     f"| {r['num_stages']} | {r['registers']} | {r['spill_bytes']} "
                     f"| {r['shared_bytes'] / 1024:.1f} | {r['seconds']:.1f} |")  # fmt: skip
    bad = [p for r in report["rows"] for p in problems(r)]
    lines += ["", f"{len(report['rows'])} kernels, {len(bad)} problem(s)", *[f"- {p}" for p in bad]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--set", choices=sorted(SETS), default="all")
    p.add_argument("--targets", type=int, nargs="+", default=[80, 90], choices=sorted(SHARED_LIMIT))
    p.add_argument("--out", default="reports/compile_kernels.json", help="JSON; the table goes beside it")
    args = p.parse_args(argv)
    import triton

    report = {"triton": triton.__version__, "targets": args.targets, **run(args.set, args.targets)}
    out = Path(args.out)
    write_json(out, report)
    table = markdown(report)
    write_text(out.with_suffix(".md"), table)
    summary = table.splitlines()
    print("\n".join(summary[next(i for i, x in enumerate(summary) if x.endswith("problem(s)")):]))
    print(f"written: {out}, {out.with_suffix('.md')}")
    return 1 if any(problems(r) for r in report["rows"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
