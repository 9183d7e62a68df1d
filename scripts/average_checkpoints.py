"""Average the weights of the last N step checkpoints of a run into one checkpoint (for evaluation).

    python scripts/average_checkpoints.py runs/<run> --last 3 --output runs/<run>/checkpoints/avg3.pt

--last defaults to trainer.keep_last in conf/train.yaml: every step checkpoint a run keeps by default.

Averaging the last few checkpoints smooths out the noise of the final updates (Vaswani et al. 2017 averaged
the last 5 or 20). The result carries the newest checkpoint's model config, tokenizer and config, so
`translate` and `make eval` read it like any other; it holds no optimizer state, so it cannot be resumed.
Written atomically.
"""

import argparse
import sys
from pathlib import Path

from translate.models.checkpoint import (
    CheckpointError,
    CheckpointManager,
    load_checkpoint,
    save_checkpoint,
)
from translate.training.config import TrainerConfig

KEEP_LAST = TrainerConfig.keep_last  # the step files a run keeps (trainer.keep_last)


def checkpoint_dir(path: Path) -> Path:
    """A run directory or its checkpoints/ directory -> the checkpoints/ directory."""
    return path / "checkpoints" if (path / "checkpoints").is_dir() else path


def average(paths: list[Path]) -> dict:
    """The newest checkpoint's payload with `model` replaced by the mean of all models' weights."""
    newest = load_checkpoint(paths[-1])
    total = {k: v.double() if v.is_floating_point() else v for k, v in newest["model"].items()}
    for path in paths[:-1]:
        model = load_checkpoint(path)["model"]
        if model.keys() != total.keys():
            raise CheckpointError(f"{path}: its weights do not match {paths[-1]} (different model)")
        for k, v in model.items():
            if v.is_floating_point():
                total[k] += v.double()
    n = len(paths)
    averaged = {
        k: (v / n).to(newest["model"][k].dtype) if newest["model"][k].is_floating_point() else v
        for k, v in total.items()
    }  # integer buffers (counters) are taken from the newest
    keep = ("model_config", "tokenizer", "config", "step", "epoch", "best_bleu")
    return {
        **{k: newest[k] for k in keep if k in newest},
        "model": averaged,
        "metrics": {"averaged_from": [str(p) for p in paths]},
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="run directory (or its checkpoints/ directory)")
    p.add_argument("--last", type=int, default=KEEP_LAST,
                   help=f"how many of the newest step-N.pt files (default {KEEP_LAST}: trainer.keep_last)")
    p.add_argument("--output", type=Path, default=None, help="default: <checkpoints>/avg<N>.pt")
    args = p.parse_args(argv)
    try:
        directory = checkpoint_dir(args.run)
        files = CheckpointManager(directory, keep_last=0).step_files()
        if args.last < 1:
            raise CheckpointError(f"--last {args.last}: must be at least 1")
        if len(files) < args.last:
            raise CheckpointError(
                f"{directory}: {len(files)} step checkpoint(s) found, --last {args.last} asked "
                f"(trainer.keep_last sets how many a run keeps)"
            )
        chosen = files[-args.last :]
        output = args.output or directory / f"avg{args.last}.pt"
        save_checkpoint(output, average(chosen))
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"averaged {', '.join(p.name for p in chosen)} -> {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
