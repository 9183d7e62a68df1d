"""Checkpoint I/O: one self-describing file (weights, model config, tokenizer, training state).

A checkpoint is all `translate` needs: load_model() rebuilds the model from ckpt["model_config"] and the
tokenizer's vocabulary sizes.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException

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


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """torch.load(weights_only=True) on the CPU; every failure becomes CheckpointError("<path>: reason")."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({reason})") from e
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not a checkpoint (expected a dict, found {type(ckpt).__name__})")
    return ckpt


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[Seq2Seq, Any, dict[str, Any]]:
    """Rebuild from the checkpoint alone -> (model in eval mode on `device`, tokenizer, ckpt)."""
    from translate.data.tokenizer import Tokenizer

    ckpt = load_checkpoint(path)
    missing = [k for k in ("model", "model_config", "tokenizer") if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)}")
    try:
        tokenizer = Tokenizer.from_state_dict(ckpt["tokenizer"])
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: unusable tokenizer state ({e})") from e
    try:
        model = build_model(
            ckpt["model_config"], tokenizer.src_vocab_size, tokenizer.tgt_vocab_size, tokenizer.shared
        )
    except (InstantiationException, ValueError, TypeError) as e:
        reason = " ".join(str(e).split())
        raise CheckpointError(f"{path}: cannot rebuild the model from model_config ({reason})") from e
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise CheckpointError(f"{path}: weights do not fit the model config ({' '.join(first[:2])})") from e
    return model.to(device).eval(), tokenizer, ckpt
