"""prepare_data: corpus -> filters -> SentencePiece (train split only) -> encoded Datasets, cached on disk.

The one entry point that training, evaluation and the data report call. Caches live under cache_dir:
  spm/<key>.<joint|src|tgt>.model       trained tokenizers, keyed by training text + tokenizer settings
  encoded/<split>-<key>.arrow            encoded splits, keyed by split text + filters + tokenizer
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np

from translate.data.config import CACHE_DIR
from translate.data.corpus import content_key, load_splits
from translate.data.errors import DataError
from translate.data.filters import filter_split
from translate.data.tokenizer import Tokenizer, train_tokenizer

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    tokenizer: Tokenizer
    datasets: dict[str, datasets.Dataset]  # columns: src, tgt (str), src_ids, tgt_ids (list[int], no BOS/EOS)
    stats: dict = field(default_factory=dict)


class _Encode:
    """Batched map function; a class so datasets never has to pickle-hash the SentencePiece processor."""

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, batch: dict) -> dict:
        return {
            "src_ids": self.tokenizer.encode_batch(batch["src"], "src"),
            "tgt_ids": self.tokenizer.encode_batch(batch["tgt"], "tgt"),
        }


def _tokenizer_sample(ds: datasets.Dataset, limit: int, seed: int) -> tuple[list[str], list[str]]:
    """At most `limit` training pairs (a seeded random subset when the split is larger)."""
    if len(ds) > limit:
        ds = ds.select(np.sort(np.random.default_rng(seed).choice(len(ds), limit, replace=False)))
    cols = ds[:]
    return cols["src"], cols["tgt"]


def encode_split(ds: datasets.Dataset, tokenizer: Tokenizer, cache_file: Path, split: str):
    """Add src_ids/tgt_ids through a batched datasets.map, cached in cache_file (reused when present)."""
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    return ds.map(
        _Encode(tokenizer),
        batched=True,
        batch_size=1000,
        cache_file_name=str(cache_file),
        load_from_cache_file=True,
        new_fingerprint=cache_file.stem,
        desc=f"{split}: encode",
    )


def prepare_data(
    data_cfg,
    cache_dir: str | Path = CACHE_DIR,
    splits=("train", "dev", "test"),
    tokenizer: Tokenizer | None = None,
) -> PreparedData:
    """Load, filter, tokenize and encode the requested splits of the corpus that data_cfg describes.

    The tokenizer is trained on the (filtered) training split, which is loaded for that even when it is
    not requested; pass `tokenizer` (e.g. from a checkpoint) to skip training.
    """
    t_start = time.perf_counter()
    cache_dir = Path(cache_dir).absolute()  # relative: against the working directory
    splits = tuple(splits)
    needed = splits if tokenizer is not None or "train" in splits else ("train", *splits)
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    raw = load_splits(data_cfg, needed, cache_dir)
    seconds["load"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    kept, split_stats, keys = {}, {}, {}
    for split in needed:
        keys[split] = content_key(raw[split])
        kept[split], split_stats[split] = filter_split(raw[split], data_cfg.filters, split, keys[split])
        if len(kept[split]) == 0:
            raise DataError(
                f"data={data_cfg.name}: the {split} split is empty after filtering "
                f"({split_stats[split]['pairs_raw']} pairs read, removed {split_stats[split]['removed']})"
            )
    seconds["filter"] = time.perf_counter() - t0

    tok_stats: dict = {"source": "given"}
    if tokenizer is None:
        tok_cfg = data_cfg.tokenizer
        src, tgt = _tokenizer_sample(kept["train"], int(tok_cfg.input_sentence_size), int(tok_cfg.seed))
        tokenizer, info = train_tokenizer(src, tgt, tok_cfg, cache_dir, corpus=keys["train"])
        tok_stats = {"source": "cache" if info["cached"] else "trained", "key": info["key"]}
        seconds["tokenizer"] = info["seconds"]
    tok_stats.update(shared=tokenizer.shared, src_vocab_size=tokenizer.src_vocab_size,
                     tgt_vocab_size=tokenizer.tgt_vocab_size, fingerprint=tokenizer.fingerprint)

    t0 = time.perf_counter()
    encoded = {}
    filters_tag = f"{data_cfg.filters.max_len}-{data_cfg.filters.max_ratio}"
    for split in splits:
        key = hashlib.sha256(f"{keys[split]}-{split}-{filters_tag}-{tokenizer.fingerprint}".encode())
        cache_file = cache_dir / "encoded" / f"{split}-{key.hexdigest()[:16]}.arrow"
        split_stats[split]["encode_cached"] = cache_file.exists()
        encoded[split] = encode_split(kept[split], tokenizer, cache_file, split)
    seconds["encode"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - t_start

    stats = {
        "name": data_cfg.name,
        "src_lang": data_cfg.src_lang,
        "tgt_lang": data_cfg.tgt_lang,
        "splits": {s: split_stats[s] for s in splits},
        "tokenizer": tok_stats,
        "seconds": seconds,
    }
    log.info("data=%s ready in %.1fs: %s; %s", data_cfg.name, seconds["total"],
             ", ".join(f"{s} {split_stats[s]['pairs']}" for s in splits), tokenizer)
    return PreparedData(tokenizer=tokenizer, datasets=encoded, stats=stats)
