"""`make compare`: the bahdanau_fig2 experiment end to end into one report (table, curves, alignments).

    .venv/bin/python scripts/compare.py                       # -> reports/bahdanau_fig2/
    make compare ARGS="--models rnnsearch transformer --max-lens 50 --train-args trainer.max_time=5m"
    make compare ARGS="--eval-args search.beam_size=1"        # greedy, faster

The runs are the experiment's sweep (conf/experiment/bahdanau_fig2.yaml): every model x training-pair length
limit (the paper's -30 and -50), labelled like the paper (RNNsearch-50). For each, the run directory
runs/<experiment>/<model>-<max_len> is reused when its checkpoints/best.pt exists, resumed when it only has
last.pt, and trained otherwise (python -m translate.train experiment=<experiment> model=<model>
data.filters.max_len=<max_len>); training is sequential, up to the experiment's time budget per run.
Then every checkpoint is evaluated together (python -m translate.evaluate, conf/evaluate.yaml) into the
report folder, which gets a README.md showing the table, the BLEU-by-length curves (Fig. 2, with the
Transformer added) and the alignments (Fig. 3).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

from translate.files import write_text

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def sweep(experiment: str) -> tuple[list[str], list[int]]:
    """The models and length limits the experiment sweeps (its hydra.sweeper.params: model, and
    data.filters.max_len); empty lists where it sweeps neither."""
    params = OmegaConf.load(CONF / "experiment" / f"{experiment}.yaml").get("hydra", {}).get("sweeper", {})
    params = params.get("params", {}) if params else {}
    models = [m.strip() for m in str(params.get("model", "")).split(",") if m.strip()]
    lens = [int(n) for n in str(params.get("data.filters.max_len", "")).split(",") if n.strip()]
    return models, lens


def label(model: str) -> str:
    """The model's class name (conf/model/<model>.yaml's _target_), as the paper names its models."""
    return str(OmegaConf.load(CONF / "model" / f"{model}.yaml")._target_).rsplit(".", 1)[-1]


def run(cmd: list[str]) -> None:
    print("+ " + shlex.join(cmd), flush=True)
    done = subprocess.run(cmd, cwd=Path.cwd())
    if done.returncode != 0:
        raise SystemExit(f"compare: error: command failed with status {done.returncode}: {shlex.join(cmd)}")


def ensure_checkpoint(model: str, max_len: int, args) -> tuple[Path, str]:
    """-> (best.pt of this run, what was done: reused | resumed | trained)."""
    run_dir = Path(args.runs) / f"{model}-{max_len}"
    best, last = run_dir / "checkpoints" / "best.pt", run_dir / "checkpoints" / "last.pt"
    if best.is_file() and not args.retrain:
        print(f"{run_dir.name}: reusing {best}", flush=True)
        return best, "reused"
    cmd = [sys.executable, "-m", "translate.train", f"experiment={args.experiment}", f"model={model}",
           f"data.filters.max_len={max_len}", f"hydra.run.dir={run_dir}", *args.train_args]  # fmt: skip
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
    for m in results["models"]:
        ckpt = Path(m["checkpoint"])
        shown = ckpt.relative_to(Path.cwd()) if ckpt.is_relative_to(Path.cwd()) else ckpt
        lines.append(f"| {m['label']} | `{shown}` | {m['step']} | {actions[m['label']]} |")
    lines += ["", table, "![BLEU by source length](bleu_by_length.png)", ""]
    pictures = [p for m in results["models"] for p in m["alignments"]]
    if pictures:
        lines += ["## Alignments (attention weights, Fig. 3 style)", ""]
        lines += [f"![{Path(p).stem}]({p})" for p in pictures]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--experiment", default="bahdanau_fig2", help="conf/experiment/<name>.yaml")
    models = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
    p.add_argument("--models", nargs="+", choices=models,
                   help="in table order (default: the experiment's sweep)")  # fmt: skip
    p.add_argument("--max-lens", nargs="+", type=int,
                   help="training pair length limits in words, data.filters.max_len (default: the "
                        "experiment's sweep)")  # fmt: skip
    p.add_argument("--runs", default=None, help="run directories root (default: runs/<experiment>)")
    p.add_argument("--out", default=None, help="report folder (default: reports/<experiment>)")
    p.add_argument("--retrain", action="store_true", help="train again even when a checkpoint exists")
    p.add_argument("--train-args", nargs="*", default=[], help="extra Hydra overrides for translate.train")
    p.add_argument("--eval-args", nargs="*", default=[], help="extra Hydra overrides for translate.evaluate")
    args = p.parse_args(argv)
    args.runs = args.runs or f"runs/{args.experiment}"
    args.out = args.out or f"reports/{args.experiment}"
    if not (CONF / "experiment" / f"{args.experiment}.yaml").is_file():
        p.error(f"--experiment: conf/experiment/{args.experiment}.yaml does not exist")
    swept_models, swept_lens = sweep(args.experiment)
    args.models, args.max_lens = args.models or swept_models, args.max_lens or swept_lens
    if not args.models or not args.max_lens:
        p.error(f"--experiment {args.experiment} sweeps no model or data.filters.max_len: give --models and "
                "--max-lens")  # fmt: skip
    start = time.monotonic()
    ckpts, labels, actions = [], [], {}
    for model in args.models:
        for max_len in args.max_lens:
            name = f"{label(model)}-{max_len}"
            path, actions[name] = ensure_checkpoint(model, max_len, args)
            ckpts.append(str(path))
            labels.append(name)
    run([sys.executable, "-m", "translate.evaluate", f"checkpoints=[{','.join(ckpts)}]",
         f"labels=[{','.join(labels)}]", f"hydra.run.dir={args.out}", *args.eval_args])  # fmt: skip
    results = json.loads((Path(args.out) / "results.json").read_text(encoding="utf-8"))
    write_text(Path(args.out) / "README.md", readme(results, actions, args, time.monotonic() - start))
    print(f"report: {args.out}/README.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
