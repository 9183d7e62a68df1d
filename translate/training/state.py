"""Training state on disk: what a checkpoint holds, how it is restored, and which files are kept.

A checkpoint holds the model, optimizer, schedule and grad-scaler states, every RNG state (torch CPU and CUDA,
python `random`, numpy), the data position (epoch, batches consumed in it), the tokenizer, the full resolved
config and the model config: enough to resume exactly, evaluate or translate. Everything is tensors, numbers,
strings, lists and dicts, so `torch.load(weights_only=True)` reads it (no pickled objects).

Files under <run dir>/checkpoints/: last.pt (newest), best.pt (best dev BLEU), step-<N>.pt (the last K kept,
for scripts/average_checkpoints.py). Written atomically by translate.models.checkpoint.save_checkpoint.
"""

import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch

from translate.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from translate.training.errors import TrainingError

STEP_FILE = re.compile(r"^step-(\d+)\.pt$")


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every RNG the loop touches, as tensors and numbers (weights_only-safe)."""
    version, internal, gauss = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "kind": np_kind,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py["version"], tuple(int(x) for x in py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state(
        (npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"], npy["gauss"])
    )
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class CheckpointManager:
    """Writes last.pt / step-N.pt / best.pt under one directory and prunes step files to the newest K."""

    def __init__(self, directory: str | Path, keep_last: int):
        self.dir = Path(directory)
        self.keep_last = keep_last

    @property
    def last(self) -> Path:
        return self.dir / "last.pt"

    @property
    def best(self) -> Path:
        return self.dir / "best.pt"

    def step_files(self) -> list[Path]:
        """step-N.pt files, oldest first."""
        if not self.dir.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.dir.iterdir() if (m := STEP_FILE.match(p.name))]
        return [p for _, p in sorted(found)]

    def save(self, payload: dict, is_best: bool) -> None:
        """step-N.pt when keep_last > 0 (older ones pruned), last.pt always, best.pt when is_best.

        The file is written once; the other names are hard links to it (a copy where links fail), each put in
        place with os.replace, so every name is always a complete checkpoint.
        """
        if self.keep_last > 0:
            first = self.dir / f"step-{payload['step']}.pt"
            save_checkpoint(first, payload)
            _link_atomic(first, self.last)
            for old in self.step_files()[: -self.keep_last]:
                old.unlink(missing_ok=True)
        else:
            first = self.last
            save_checkpoint(first, payload)
        if is_best:
            _link_atomic(first, self.best)


def _link_atomic(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.link.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def resume_path(resume: bool | str, resume_from: str | None, run_dir: Path) -> Path | None:
    """The checkpoint to resume from, or None to start fresh.

    trainer.resume_from=<file> wins (it must exist); trainer.resume=true means <run dir>/checkpoints/last.pt,
    which must exist; trainer.resume=auto resumes from it when it exists and starts fresh otherwise, so one
    command serves a preemptible job's first start and every restart.
    """
    if resume not in (True, False, "auto"):
        raise TrainingError(f"trainer.resume must be true, false or auto, got {resume!r}")
    if resume_from:
        path = Path(resume_from)
    elif resume:
        path = run_dir / "checkpoints" / "last.pt"
        if resume == "auto" and not path.is_file():
            return None
    else:
        return None
    if not path.is_file():
        hint = (
            " (set hydra.run.dir to the run to resume, trainer.resume=auto to start fresh when there is none,"
            " or trainer.resume_from=<file>)"
            if not resume_from
            else ""
        )
        raise CheckpointError(f"{path}: no checkpoint to resume from{hint}")
    return path


def load_for_resume(path: Path) -> dict:
    """The checkpoint, checked to hold every training state the loop restores."""
    ckpt = load_checkpoint(path)
    needed = ("model", "model_config", "optimizer", "scheduler", "rng", "step", "tokenizer")
    missing = [k for k in needed if k not in ckpt]
    if "train_state" not in ckpt and "data_position" not in ckpt:  # data_position: before train_state
        missing.append("train_state")
    if missing:
        raise CheckpointError(f"{path}: cannot resume, checkpoint lacks {', '.join(missing)}")
    return ckpt
