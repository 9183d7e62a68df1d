"""Drop bad pairs before the tokenizer sees them, and count what each filter removed.

Lengths are whitespace words, so filtering does not depend on the tokenizer. Every split loses pairs with
an empty side; only the training split is cut by max_len and max_ratio (dev and test keep their long
sentences: the long-sentence comparison needs them). A pair is counted under the first filter it fails,
in the order empty, max_len, ratio.
"""

from __future__ import annotations

import logging
from collections import Counter

import datasets

from translate.data.errors import DataError

log = logging.getLogger(__name__)

REASONS = ("empty", "max_len", "ratio")


def drop_reason(src: str, tgt: str, max_len: int | None, max_ratio: float | None) -> str:
    """The first filter this pair fails ("" when it passes)."""
    ns, nt = len(src.split()), len(tgt.split())
    if ns == 0 or nt == 0:
        return "empty"
    if max_len is not None and max(ns, nt) > max_len:
        return "max_len"
    if max_ratio is not None and max(ns, nt) / min(ns, nt) > max_ratio:
        return "ratio"
    return ""


def _reasons(batch: dict, max_len, max_ratio) -> dict:
    return {"_drop": [drop_reason(s, t, max_len, max_ratio) for s, t in zip(batch["src"], batch["tgt"])]}


def _keep(batch: dict) -> list[bool]:
    return [r == "" for r in batch["_drop"]]


def filter_split(ds: datasets.Dataset, filters_cfg, split: str, key: str) -> tuple[datasets.Dataset, dict]:
    """Filtered split and {"pairs_raw", "removed": {reason: count}, "pairs"}; `key` (the split's content
    hash) fingerprints the datasets operations, so they need not hash these functions."""
    train = split == "train"
    max_len = filters_cfg.max_len if train else None
    max_ratio = filters_cfg.max_ratio if train else None
    if max_len is not None and max_len < 1:
        raise DataError(f"data.filters.max_len must be >= 1 or null, got {max_len}")
    if max_ratio is not None and max_ratio < 1:
        raise DataError(f"data.filters.max_ratio must be >= 1 or null, got {max_ratio}")
    tag = f"{key}-{max_len}-{max_ratio}"
    marked = ds.map(_reasons, batched=True, fn_kwargs={"max_len": max_len, "max_ratio": max_ratio},
                    new_fingerprint=f"reasons-{tag}", desc=f"{split}: filters")
    counts = Counter(r for batch in marked.select_columns(["_drop"]).iter(batch_size=50_000)
                     for r in batch["_drop"])
    removed = {r: counts.get(r, 0) for r in REASONS}
    if sum(removed.values()):
        marked = marked.filter(_keep, batched=True, new_fingerprint=f"kept-{tag}")
    kept = marked.remove_columns("_drop")
    stats = {"pairs_raw": len(ds), "removed": removed, "pairs": len(kept)}
    log.info("%s: %d pairs, removed %s, kept %d", split, len(ds),
             ", ".join(f"{v} {k}" for k, v in removed.items()), len(kept))
    return kept, stats
