"""Checkpoints: one self-describing file each, written, read, rebuilt into a model, kept and found on disk.

A checkpoint holds the weights, the model config and the tokenizer (all `translate` needs: load_model()
rebuilds the model from ckpt["model_config"] and the tokenizer's vocabulary sizes); one written by training
also holds the optimizer, schedule and grad-scaler states, every RNG state, the data position, the full
resolved config and the dev metrics, enough to resume exactly. Everything is tensors, numbers, strings, lists
and dicts, so `torch.load(weights_only=True)` reads it (no pickled objects).

The layout is 0.1.0's, the one released (train_state for the loop, LambdaLR schedule states); nothing reads
an earlier one: resuming a file without train_state is refused by name (load_for_resume), and inference
needs only model, model_config and tokenizer, which every layout has.

Files under <run dir>/checkpoints/ (CheckpointManager): last.pt (newest), best.pt (best dev BLEU), step-<N>.pt
(the last trainer.keep_last kept, for scripts/average_checkpoints.py). Every file is written atomically
(translate.files), so a crash never leaves half a checkpoint under any of these names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from translate.files import link_atomic, write_atomic
from translate.models.build import build_model
from translate.models.interface import Seq2Seq


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or incomplete; the message is one line naming the path."""


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """torch.save, atomically (temp file beside `path`, fsync, os.replace): never half a file."""
    write_atomic(path, lambda f: torch.save(payload, f))


# The top-level entries a checkpoint may hold and the type each must have; unknown entries pass unchecked.
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "model": (Mapping,), "model_config": (Mapping,), "tokenizer": (Mapping,), "config": (Mapping,),
    "step": (int,), "epoch": (int,), "best_bleu": (int, float), "optimizer": (Mapping,),
    "scheduler": (Mapping,), "scaler": (Mapping,), "rng": (Mapping,), "train_state": (Mapping,),
    "metrics": (Mapping,), "attention_backend": (Mapping,),
}  # fmt: skip


def check_fields(ckpt: dict, path: Path) -> None:
    """Every known top-level entry has its type, and the weights are named tensors (else CheckpointError)."""
    for key, types in FIELD_TYPES.items():
        if key in ckpt and (not isinstance(ckpt[key], types) or isinstance(ckpt[key], bool)):
            expected = " or ".join("a mapping" if t is Mapping else t.__name__ for t in types)
            raise CheckpointError(f"{path}: '{key}' should be {expected}, found {type(ckpt[key]).__name__}")
    weights = ckpt.get("model", {})
    bad = [k for k, v in weights.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: 'model' should map parameter names to tensors (entry {bad[0]!r})")


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(e).__name__


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """torch.load(weights_only=True) on the CPU; every failure becomes CheckpointError("<path>: reason").

    The file is untrusted input: whatever the unpickler raises on malformed bytes (truncated archives,
    random bytes, old pickle streams) means "not a readable checkpoint"; the known top-level entries are
    then checked for their types.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any exception while parsing the bytes means a malformed file
        raise CheckpointError(f"{path}: not a readable checkpoint ({first_line(e)})") from e
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not a checkpoint (expected a dict, found {type(ckpt).__name__})")
    check_fields(ckpt, path)
    return ckpt


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[Seq2Seq, Any, dict[str, Any]]:
    """Rebuild from the checkpoint alone -> (model in eval mode on `device`, tokenizer, ckpt).

    The model is for inference: eval mode and its parameters frozen (requires_grad False), which is what lets
    decoding on a CPU keep packed copies of its weights (models/cpu_linear.py, packed.py). To train it, call
    model.train().requires_grad_(True).

    Every malformed checkpoint gives one CheckpointError naming the path. model_config can only name one of
    the project's model classes (translate.models.build), so loading never calls arbitrary code.
    """
    from translate.data.tokenizer import Tokenizer

    ckpt = load_checkpoint(path)
    missing = [k for k in ("model", "model_config", "tokenizer") if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)}")
    try:
        tokenizer = Tokenizer.from_state_dict(ckpt["tokenizer"])
    except ValueError as e:  # DataError included
        raise CheckpointError(f"{path}: unusable tokenizer state ({first_line(e)})") from e
    try:
        model = build_model(
            ckpt["model_config"], tokenizer.src_vocab_size, tokenizer.tgt_vocab_size, tokenizer.shared_vocab
        )
    except Exception as e:  # a constructor fed bad arguments may raise anything
        raise CheckpointError(f"{path}: cannot rebuild the model from model_config ({first_line(e)})") from e
    try:
        model.load_state_dict(ckpt["model"])
    except Exception as e:  # wrong shapes, non-tensors, missing or extra keys
        lines = str(e).strip().splitlines()
        reason = " ".join(" ".join(lines[:2]).split()) or type(e).__name__
        raise CheckpointError(f"{path}: weights do not fit the model config ({reason})") from e
    return model.to(device).eval().requires_grad_(False), tokenizer, ckpt


def model_label(ckpt: dict, path: str | Path) -> str:
    """A short name for tables and plots: the model class, e.g. "RNNsearch" or "Transformer"."""
    target = str(ckpt.get("model_config", {}).get("_target_", ""))
    return target.rsplit(".", 1)[-1] or Path(path).stem


# ---- the files a run keeps, and finding them

STEP_FILE = re.compile(r"^step-(\d+)\.pt$")
SEARCH_ROOTS = ("runs", "outputs")  # where newest_best_checkpoint looks (Hydra run directories)


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
        place atomically (translate.files.link_atomic), so every name is always a complete checkpoint.
        """
        if self.keep_last > 0:
            first = self.dir / f"step-{payload['step']}.pt"
            save_checkpoint(first, payload)
            link_atomic(first, self.last)
            for old in self.step_files()[: -self.keep_last]:
                old.unlink(missing_ok=True)
        else:
            first = self.last
            save_checkpoint(first, payload)
        if is_best:
            link_atomic(first, self.best)


def newest_best_checkpoint(roots: tuple[str | Path, ...] = SEARCH_ROOTS) -> Path:
    """The most recently modified <run dir>/checkpoints/best.pt below any of `roots` (relative to the cwd)."""
    found = [p for root in roots if Path(root).is_dir() for p in Path(root).rglob("checkpoints/best.pt")]
    if not found:
        where = " or ".join(f"{r}/" for r in roots)
        raise CheckpointError(f"no checkpoints/best.pt under {where}: train a model or pass a checkpoint")
    return max(found, key=lambda p: p.stat().st_mtime)


def resume_path(resume: bool | str, resume_from: str | None, run_dir: Path) -> Path | None:
    """The checkpoint to resume from, or None to start fresh.

    trainer.resume_from=<file> wins (it must exist); trainer.resume=true means <run dir>/checkpoints/last.pt,
    which must exist; trainer.resume=auto resumes from it when it exists and starts fresh otherwise, so one
    command serves a preemptible job's first start and every restart.
    """
    if resume not in (True, False, "auto"):
        raise CheckpointError(f"trainer.resume must be true, false or auto, got {resume!r}")
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
    needed = ("model", "model_config", "optimizer", "scheduler", "rng", "step", "tokenizer", "train_state")
    missing = [k for k in needed if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: cannot resume, checkpoint lacks {', '.join(missing)}")
    return ckpt


def load_for_init(path: str | Path) -> dict:
    """The checkpoint a new run starts from (trainer.init_from): it must hold weights, model config and
    tokenizer; nothing else of it is used."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint to start from (trainer.init_from)")
    ckpt = load_checkpoint(path)
    missing = [k for k in ("model", "model_config", "tokenizer") if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: cannot start from it, checkpoint lacks {', '.join(missing)}")
    return ckpt
