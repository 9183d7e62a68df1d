"""Finding checkpoints: the default is the newest best.pt that training wrote under runs/ (or outputs/)."""

from __future__ import annotations

from pathlib import Path

from translate.models.checkpoint import CheckpointError

SEARCH_ROOTS = ("runs", "outputs")


def newest_best_checkpoint(roots: tuple[str | Path, ...] = SEARCH_ROOTS) -> Path:
    """The most recently modified <run dir>/checkpoints/best.pt below any of `roots` (relative to the cwd)."""
    found = [p for root in roots if Path(root).is_dir() for p in Path(root).rglob("checkpoints/best.pt")]
    if not found:
        where = " or ".join(f"{r}/" for r in roots)
        raise CheckpointError(f"no checkpoints/best.pt under {where}: train a model or pass a checkpoint")
    return max(found, key=lambda p: p.stat().st_mtime)


def resolve_device(name: str) -> str:
    """ "auto" -> "cuda" when available, else "cpu"; anything else is passed through."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def model_label(ckpt: dict, path: str | Path) -> str:
    """A short name for tables and plots: the model class, e.g. "RNNsearch" or "Transformer"."""
    target = str(ckpt.get("model_config", {}).get("_target_", ""))
    return target.rsplit(".", 1)[-1] or Path(path).stem
