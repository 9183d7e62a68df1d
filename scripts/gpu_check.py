"""The GPU check, prepared for the day a CUDA device is lent: four steps in under 8 minutes on one H100.

    python scripts/gpu_check.py                  # -> reports/gpu_check/gpu_check.{json,md}, each step's files
    python scripts/gpu_check.py --out $OUT/gpu_check --python /opt/venv/bin/python
    python scripts/gpu_check.py --dry-run        # no GPU: every step's command checked, the report drafted

Steps (each a subprocess with its own time limit; a step that fails or runs out of time is reported and the
next one still runs):
  1. kernels   the Triton kernel tests compiled for the GPU (TRITON_INTERPRET unset, CUDA tensors), against
               the fp32 references: tests/attention/test_triton_{flash,additive,paged,compile}.py    (90 s)
  2. attention scripts/bench_attention.py: ours (triton) against math, sdpa, PyTorch's FlashAttention-2
               (sdpa-flash) and flash-attn's (fa2, where installed): time and peak memory by sequence
               length, fp16, causal and sliding window                                                (75 s)
  3. train     `make train`'s entry point for 3 minutes on CUDA with trainer.precision=auto           (255 s)
  4. decode    scripts/bench_decode.py on that run's best.pt: greedy and beam 5 on CUDA                (60 s)
The report (one JSON, one Markdown table) names the GPU, torch, triton and CUDA versions and each step's
figures. The GPU machine has no network: the Python given by --python (default: .venv/bin/python if it
exists, else this one) must already have CUDA torch, triton and the package's dependencies installed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from translate.files import write_json, write_text

ROOT = Path(__file__).resolve().parents[1]

KERNEL_TESTS = [f"tests/attention/test_triton_{k}.py" for k in ("flash", "additive", "paged", "compile")]
TRAIN_OVERRIDES = ["device=cuda", "trainer.precision=auto", "trainer.max_time=3m",
                   "trainer.val_every_time=90s"]  # fmt: skip


def steps(py: str, out: Path) -> list[dict]:
    """name, command, time limit (s), and the files the step leaves in out."""
    run_dir = out / "train_run"
    return [
        dict(name="kernels", limit=90, cmd=[py, "-m", "pytest", *KERNEL_TESTS, "-q", "-p", "no:cacheprovider",
                                           f"--junitxml={out / 'kernel_tests.xml'}"]),  # fmt: skip
        dict(name="attention", limit=75, cmd=[py, "scripts/bench_attention.py", "--device", "cuda", "--dtype",
                                             "float16", "--lengths", "128-8192", "--min-time", "0.1",
                                             "--max-reps", "10", "--out", str(out / "bench_attention.json")]),
        dict(name="train", limit=255, cmd=[py, "-m", "translate.train", *TRAIN_OVERRIDES,
                                          f"hydra.run.dir={run_dir}"]),  # fmt: skip
        dict(name="decode", limit=60, cmd=[py, "scripts/bench_decode.py", "--device", "cuda", "--checkpoints",
                                          str(run_dir / "checkpoints" / "best.pt"), "--sentences", "500",
                                          "--beams", "1", "5", "--out", str(out / "bench_decode.json")]),
    ]  # fmt: skip


def environment(py: str) -> dict:
    """GPU, torch, CUDA and triton versions as the checked Python sees them."""
    code = """if True:
        import json, torch
        try:
            import triton
            tv = triton.__version__
        except ImportError:
            tv = None
        cuda = torch.cuda.is_available()
        print(json.dumps({"gpu": torch.cuda.get_device_name() if cuda else None, "torch": torch.__version__,
                          "cuda": torch.version.cuda, "triton": tv,
                          "capability": list(torch.cuda.get_device_capability()) if cuda else None}))
    """
    done = subprocess.run([py, "-c", code], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(done.stdout)


def run_step(step: dict, out: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}  # compiled, not interpreted
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    log = out / f"{step['name']}.log"
    t0 = time.perf_counter()
    with open(log, "w", encoding="utf-8") as f:
        try:
            done = subprocess.run(step["cmd"], cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT,
                                  timeout=step["limit"])  # fmt: skip
            status = "ok" if done.returncode == 0 else f"failed (exit {done.returncode})"
        except subprocess.TimeoutExpired:
            status = f"timed out after {step['limit']} s"
    return {"status": status, "seconds": round(time.perf_counter() - t0, 1), "log": str(log)}


def figures(name: str, out: Path) -> dict:
    """What one finished step measured, read from the files it wrote (missing files: nothing)."""
    try:
        if name == "kernels":
            suite = ET.parse(out / "kernel_tests.xml").getroot()
            suite = suite.find("testsuite") if suite.tag == "testsuites" else suite
            return {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
        if name == "attention":
            rows = json.loads((out / "bench_attention.json").read_text())["rows"]
            return {"rows": rows}
        if name == "train":
            run = out / "train_run"
            lines = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines() if x.strip()]
            train = [x for x in lines if x["group"] == "train"]
            dev = [x for x in lines if x["group"] == "dev"]
            log = (out / "train.log").read_text(errors="replace").splitlines()  # the step's own output
            last, best = (train[-1] if train else {}), (dev[-1] if dev else {})
            return {"updates": last.get("step", 0), "tokens_per_s": last.get("tokens_per_s"),
                    "dev_bleu": best.get("bleu"), "dev_loss": best.get("loss"),
                    "precision": next((x.strip() for x in log if x.startswith("precision: ")), None)}
        if name == "decode":
            rows = json.loads((out / "bench_decode.json").read_text())["rows"]
            return {"rows": rows}
    except (OSError, ValueError, KeyError, ET.ParseError) as e:
        return {"missing": f"{type(e).__name__}: {e}"}
    return {}


def markdown(report: dict) -> str:
    env = report["environment"]
    lines = [f"GPU check on {env.get('gpu') or 'no GPU'} (torch {env.get('torch')}, CUDA {env.get('cuda')}, "
             f"triton {env.get('triton')}){' — dry run, nothing measured' if report['dry_run'] else ''}.",
             "", "| step | status | seconds | figures |", "|---|---|---:|---|"]  # fmt: skip
    for s in report["steps"]:
        f = s.get("figures", {})
        if s["name"] == "kernels" and "tests" in f:
            text = (f"{f['tests']} tests, {f['failures']} failures, {f['errors']} errors, "
                    f"{f['skipped']} skipped")
        elif s["name"] == "train" and "updates" in f:
            text = (f"{f['updates']} updates, {f['tokens_per_s'] or 0:,.0f} tokens/s, "
                    f"dev BLEU {f['dev_bleu']}, {f['precision']}")
        elif "rows" in f:
            text = f"{len(f['rows'])} rows (table below)"
        else:
            text = f.get("missing", "")
        lines.append(f"| {s['name']} | {s['status']} | {s.get('seconds', '')} | {text} |")
    for s in report["steps"]:
        rows = s.get("figures", {}).get("rows")
        if s["name"] == "attention" and rows:
            lines += ["", "| length | backend | mask | fwd ms | fwd+bwd ms | fwd peak MiB "
                      "| fwd+bwd peak MiB |", "|---:|---|---|---:|---:|---:|---:|"]  # fmt: skip
            for r in rows:
                cells = [r["status"], "", "", ""]
                if r["status"] == "ok":
                    cells = [f"{r['fwd_ms']:.3f}", f"{r['fwd_bwd_ms']:.3f}", f"{r['fwd_peak_mib']:.1f}",
                             f"{r['fwd_bwd_peak_mib']:.1f}"]
                lines.append(f"| {r['length']} | {r['backend']} | {r['mask']} | " + " | ".join(cells) + " |")
        if s["name"] == "decode" and rows:
            lines += ["", "| model | search | KV cache | sentences | sent/s | tokens/s |",
                      "|---|---|---|---:|---:|---:|"]  # fmt: skip
            for r in rows:
                lines.append(f"| {r['model']} | {r['search']} | {'on' if r['kv_cache'] else 'off'} "
                             f"| {r['sentences']} | {r['sentences_per_s']:.1f} | {r['tokens_per_s']:.0f} |")
    return "\n".join(lines) + "\n"


def dry_check(step: dict) -> str:
    """Without a GPU: the step's command can start (scripts parse their arguments, pytest collects, Hydra
    composes the training overrides)."""
    cmd = step["cmd"]
    if step["name"] == "kernels":
        probe = [*cmd[:3], *KERNEL_TESTS, "--collect-only", "-q", "-p", "no:cacheprovider"]
    elif step["name"] == "train":
        from hydra import compose, initialize_config_dir

        from translate.search.config import register_with_hydra

        register_with_hydra()
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
            compose("train", overrides=TRAIN_OVERRIDES)
        return "ok (the overrides compose)"
    else:  # argparse checks every option before it reaches the trailing --help
        probe = [*cmd, "--help"]
    done = subprocess.run(probe, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        return f"failed: {shlex.join(probe)}: {why}"
    return "ok (the command starts)"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("reports/gpu_check"))
    default_py = ROOT / ".venv" / "bin" / "python"
    p.add_argument("--python", default=str(default_py) if default_py.exists() else sys.executable)
    p.add_argument("--dry-run", action="store_true",
                   help="no GPU: check every step's command, draft the report")  # fmt: skip
    p.add_argument("--only", nargs="+", choices=["kernels", "attention", "train", "decode"], help="run these")
    args = p.parse_args(argv)
    out = args.out.absolute()
    out.mkdir(parents=True, exist_ok=True)
    env = environment(args.python)
    if not args.dry_run and not env.get("gpu"):
        p.error(f"{args.python}: no CUDA device ({env.get('error', 'torch.cuda.is_available() is False')}); "
                "--dry-run checks the steps without one")  # fmt: skip
    report = {"environment": env, "dry_run": args.dry_run, "python": args.python, "steps": []}
    for step in steps(args.python, out):
        if args.only and step["name"] not in args.only:
            continue
        entry = {"name": step["name"], "command": shlex.join(step["cmd"]), "limit_s": step["limit"]}
        print(f"gpu_check: {step['name']}: {entry['command']}", flush=True)
        if args.dry_run:
            entry["status"] = dry_check(step)
        else:
            entry.update(run_step(step, out))
            entry["figures"] = figures(step["name"], out)
        print(f"gpu_check: {step['name']}: {entry['status']}", flush=True)
        report["steps"].append(entry)
    write_json(out / "gpu_check.json", report)
    write_text(out / "gpu_check.md", markdown(report))
    print(markdown(report))
    print(f"written: {out / 'gpu_check.json'}, {out / 'gpu_check.md'}")
    return 0 if all(s["status"].startswith("ok") for s in report["steps"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
