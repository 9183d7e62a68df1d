"""Checkpoint I/O: one self-describing file (weights, model config, tokenizer, training state).

A checkpoint is all `translate` needs: load_model() rebuilds the model from ckpt["model_config"] and the
tokenizer's vocabulary sizes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from translate.models.build import build_model
from translate.models.interface import Seq2Seq


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or incomplete; the message is one line naming the path."""


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write atomically: temp file in the same directory, fsync, os.replace (never half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# The top-level entries a checkpoint may hold and the type each must have; unknown entries pass unchecked.
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "model": (Mapping,), "model_config": (Mapping,), "tokenizer": (Mapping,), "config": (Mapping,),
    "step": (int,), "epoch": (int,), "best_bleu": (int, float), "optimizer": (Mapping,),
    "scheduler": (Mapping,), "scaler": (Mapping,), "rng": (Mapping,), "data_position": (Mapping,),
    "metrics": (Mapping,),
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
            ckpt["model_config"], tokenizer.src_vocab_size, tokenizer.tgt_vocab_size, tokenizer.shared
        )
    except Exception as e:  # a constructor fed bad arguments may raise anything
        raise CheckpointError(f"{path}: cannot rebuild the model from model_config ({first_line(e)})") from e
    try:
        model.load_state_dict(ckpt["model"])
    except Exception as e:  # wrong shapes, non-tensors, missing or extra keys
        lines = str(e).strip().splitlines()
        reason = " ".join(" ".join(lines[:2]).split()) or type(e).__name__
        raise CheckpointError(f"{path}: weights do not fit the model config ({reason})") from e
    return model.to(device).eval(), tokenizer, ckpt
