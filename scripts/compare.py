"""`make compare`: the bahdanau_fig2 experiment end to end into one report (table, curves, alignments).

    .venv/bin/python scripts/compare.py                       # -> reports/bahdanau_fig2/
    make compare ARGS="--models rnnsearch transformer --train-args trainer.max_time=5m"
    make compare ARGS="--eval-args search.beam_size=1"        # greedy, faster

For each model: runs/<experiment>/<model>/checkpoints/best.pt is reused when it exists; a run with only
last.pt is resumed; otherwise it is trained (python -m translate.train experiment=<experiment> model=<model>
hydra.run.dir=runs/<experiment>/<model>). Then every checkpoint is evaluated together (python -m
translate.evaluate, conf/evaluate.yaml) into the report folder, which gets a README.md that shows the table,
the BLEU-by-length curves (Bahdanau et al. 2014, Fig. 2, with the Transformer added) and the alignments.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from translate.evaluation.files import write_text  # noqa: E402

MODELS = ("rnnencdec", "rnnsearch", "transformer")


def run(cmd: list[str]) -> None:
    print("+ " + shlex.join(cmd), flush=True)
    done = subprocess.run(cmd, cwd=Path.cwd())
    if done.returncode != 0:
        raise SystemExit(f"compare: error: command failed with status {done.returncode}: {shlex.join(cmd)}")


def ensure_checkpoint(model: str, args) -> tuple[Path, str]:
    """-> (best.pt of this model's run, what was done: reused | resumed | trained)."""
    run_dir = Path(args.runs) / model
    best, last = run_dir / "checkpoints" / "best.pt", run_dir / "checkpoints" / "last.pt"
    if best.is_file() and not args.retrain:
        print(f"{model}: reusing {best}", flush=True)
        return best, "reused"
    cmd = [sys.executable, "-m", "translate.train", f"experiment={args.experiment}", f"model={model}",
           f"hydra.run.dir={run_dir}", *args.train_args]  # fmt: skip
    action = "trained"
    if last.is_file() and not args.retrain:
        cmd.append("trainer.resume=true")
        action = "resumed"
    run(cmd)
    if not best.is_file():
        raise SystemExit(f"compare: error: {best}: training ended without a best checkpoint")
    return best, action


def readme(results: dict, actions: dict, args, seconds: float) -> str:
    """The report folder's README.md: how it was made, the table, the curves and the alignments."""
    table = (Path(args.out) / "results.md").read_text(encoding="utf-8")
    lines = [
        f"# {args.experiment}: BLEU by sentence length (Bahdanau et al. 2014, Fig. 2)",
        "",
        f"Made by `python scripts/compare.py {shlex.join(sys.argv[1:])}`".rstrip()
        + f" in {seconds / 60:.1f} min.",
        "",
        "| model | checkpoint | step | how |",
        "|---|---|---:|---|",
    ]
    for m, model in zip(results["models"], args.models):
        lines.append(f"| {m['label']} | `{m['checkpoint']}` | {m['step']} | {actions[model]} |")
    lines += ["", table, "![BLEU by source length](bleu_by_length.png)", ""]
    pictures = [p for m in results["models"] for p in m["alignments"]]
    if pictures:
        lines += ["## Alignments (attention weights, Fig. 3 style)", ""]
        lines += [f"![{Path(p).stem}]({p})" for p in pictures]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--experiment", default="bahdanau_fig2", help="conf/experiment/<name>.yaml")
    p.add_argument("--models", nargs="+", default=list(MODELS), help="conf/model/<name>.yaml, in table order")
    p.add_argument("--runs", default=None, help="run directories root (default: runs/<experiment>)")
    p.add_argument("--out", default=None, help="report folder (default: reports/<experiment>)")
    p.add_argument("--retrain", action="store_true", help="train again even when a checkpoint exists")
    p.add_argument("--train-args", nargs="*", default=[], help="extra Hydra overrides for translate.train")
    p.add_argument("--eval-args", nargs="*", default=[], help="extra Hydra overrides for translate.evaluate")
    args = p.parse_args(argv)
    args.runs = args.runs or f"runs/{args.experiment}"
    args.out = args.out or f"reports/{args.experiment}"
    if not (ROOT / "conf/experiment" / f"{args.experiment}.yaml").is_file():
        p.error(f"--experiment: conf/experiment/{args.experiment}.yaml does not exist")
    start = time.monotonic()
    ckpts, actions = [], {}
    for model in args.models:
        path, actions[model] = ensure_checkpoint(model, args)
        ckpts.append(str(path))
    run([sys.executable, "-m", "translate.evaluate", f"checkpoints=[{','.join(ckpts)}]",
         f"hydra.run.dir={args.out}", *args.eval_args])  # fmt: skip
    results = json.loads((Path(args.out) / "results.json").read_text(encoding="utf-8"))
    write_text(Path(args.out) / "README.md", readme(results, actions, args, time.monotonic() - start))
    print(f"report: {args.out}/README.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
