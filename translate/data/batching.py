"""Token-budget batches: bucketed by length, shuffled by (seed, epoch), resumable, sharded over DDP ranks.

Legend: B batch, S source length (incl. EOS), T target length (incl. BOS or EOS).

A batch's padded size B * max(length) never exceeds max_tokens, where an example's length is
max(len(src_ids), len(tgt_ids)) + 1 (the +1 is the EOS on the source and on tgt_out, the BOS on tgt_in).
An example longer than max_tokens on its own gets a batch of one rather than being dropped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields

import numpy as np
import pyarrow.compute as pc
import torch

from translate.data.errors import DataError
from translate.data.vocab import BOS_ID, EOS_ID, PAD_ID


@dataclass
class Batch:
    """Padded tensors and masks for teacher forcing; tgt_* are None for source-only (inference) batches."""

    src: torch.Tensor  # (B, S) source ids + EOS, right-padded with PAD_ID
    src_lengths: torch.Tensor  # (B,) including EOS
    ids: torch.Tensor  # (B,) index of each example in its split
    src_pad_mask: torch.Tensor  # (B, S) True at PAD
    tgt_in: torch.Tensor | None = None  # (B, T) BOS + target ids
    tgt_out: torch.Tensor | None = None  # (B, T) target ids + EOS (labels; PAD ignored by the loss)
    tgt_pad_mask: torch.Tensor | None = None  # (B, T) True at PAD
    n_tgt_tokens: int = 0  # non-pad target tokens, EOS included

    def __len__(self) -> int:
        return self.src.size(0)

    def to(self, device, non_blocking: bool = False) -> Batch:
        moved = {}
        for f in fields(self):
            v = getattr(self, f.name)
            moved[f.name] = v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v
        return Batch(**moved)


def _pad(rows: list[list[int]]) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [PAD_ID] * (width - len(r)) for r in rows], dtype=torch.long)


def collate(examples: Sequence[dict]) -> Batch:
    """Examples with "src_ids", optionally "tgt_ids" (no BOS/EOS) and "id" (defaults to the position)."""
    if not examples:
        raise ValueError("collate: empty list of examples")
    src = _pad([list(e["src_ids"]) + [EOS_ID] for e in examples])  # (B, S)
    ids = torch.tensor([e.get("id", i) for i, e in enumerate(examples)], dtype=torch.long)  # (B,)
    src_pad_mask = src.eq(PAD_ID)  # (B, S)
    batch = Batch(src=src, src_lengths=(~src_pad_mask).sum(1), ids=ids, src_pad_mask=src_pad_mask)
    if examples[0].get("tgt_ids") is not None:
        tgt = [list(e["tgt_ids"]) for e in examples]
        batch.tgt_in = _pad([[BOS_ID] + t for t in tgt])  # (B, T)
        batch.tgt_out = _pad([t + [EOS_ID] for t in tgt])  # (B, T)
        batch.tgt_pad_mask = batch.tgt_out.eq(PAD_ID)  # (B, T)
        batch.n_tgt_tokens = int((~batch.tgt_pad_mask).sum())
    return batch


def _pack(order: np.ndarray, lengths: np.ndarray, max_tokens: int) -> list[list[int]]:
    """Greedy packing in the given order: add examples while B * max(length) stays within max_tokens."""
    batches, cur, cur_max = [], [], 0
    for i in order.tolist():
        n = int(lengths[i])
        if cur and (len(cur) + 1) * max(cur_max, n) > max_tokens:
            batches.append(cur)
            cur, cur_max = [], 0
        cur.append(i)
        cur_max = max(cur_max, n)
    if cur:
        batches.append(cur)
    return batches


def _split_to_multiple(batches: list[list[int]], k: int) -> list[list[int]]:
    """Halve the largest batches until the count divides by k, so every rank gets as many batches."""
    while len(batches) % k:
        j = max(range(len(batches)), key=lambda b: len(batches[b]))
        b = batches[j]
        if len(b) < 2:
            n = sum(map(len, batches))
            raise DataError(f"cannot shard {n} examples over {k} ranks: too few examples")
        batches[j : j + 1] = [b[: len(b) // 2], b[len(b) // 2 :]]
    return batches


class TokenBatchSampler:
    """Yields lists of example indices; see the module docstring for the budget.

    With shuffle, the epoch's order depends only on (seed, epoch): examples are sorted by length with a
    random tie-break (bucket=True), packed, and the batches are shuffled. Without shuffle, batches come in
    length order (for evaluation; Batch.ids restores the corpus order). With num_replicas > 1, rank r takes
    every num_replicas-th batch: shards are disjoint, cover the split and have equal batch counts.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        max_tokens: int,
        shuffle: bool,
        seed: int,
        num_replicas: int = 1,
        rank: int = 0,
        bucket: bool = True,
    ):
        if max_tokens < 1:
            raise DataError(f"max_tokens must be positive, got {max_tokens}")
        if not 0 <= rank < num_replicas:
            raise DataError(f"rank {rank} is outside 0..{num_replicas - 1}")
        if len(lengths) == 0:
            raise DataError("cannot batch an empty split")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.max_tokens = int(max_tokens)
        self.shuffle, self.seed, self.bucket = shuffle, int(seed), bucket
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.epoch, self.start_batch = 0, 0
        self._cache: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Choose the epoch (and the batch to resume from) that the next __iter__ yields."""
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def all_batches(self, epoch: int) -> list[list[int]]:
        """Every rank's batches of this epoch, in order; rank r gets items r, r + num_replicas, ..."""
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, epoch])
        n = len(self.lengths)
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        if self.bucket:
            order = order[np.argsort(self.lengths[order], kind="stable")]
        batches = _split_to_multiple(_pack(order, self.lengths, self.max_tokens), self.num_replicas)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        self._cache = (epoch, batches)
        return batches

    def iterate(self, epoch: int, start_batch: int = 0) -> Iterator[list[int]]:
        """This rank's batches of `epoch`, skipping the first start_batch (to resume mid-epoch)."""
        yield from self.all_batches(epoch)[self.rank :: self.num_replicas][start_batch:]

    def __iter__(self) -> Iterator[list[int]]:
        return self.iterate(self.epoch, self.start_batch)

    def __len__(self) -> int:
        """Batches that __iter__ yields for this rank (the epoch's count minus start_batch)."""
        return max(0, len(self.all_batches(self.epoch)) // self.num_replicas - self.start_batch)

    def padding_ratio(self, epoch: int | None = None) -> float:
        """Share of the padded (B * max length) budget that is padding, over one epoch's batches."""
        batches = self.all_batches(self.epoch if epoch is None else epoch)
        return padding_ratio(self.lengths, batches)


def padding_ratio(lengths: Sequence[int] | np.ndarray, batches: Sequence[Sequence[int]]) -> float:
    """1 - real tokens / padded tokens, with padded = len(batch) * max length in the batch."""
    lengths = np.asarray(lengths)
    real = padded = 0
    for b in batches:
        ls = lengths[list(b)]
        real += int(ls.sum())
        padded += len(b) * int(ls.max())
    return 1.0 - real / padded if padded else 0.0


def example_lengths(dataset) -> np.ndarray:
    """max(len(src_ids), len(tgt_ids)) + 1 per example, read from the Arrow columns without Python lists."""
    table = dataset.with_format("arrow")[:]  # pyarrow.Table, row selection (indices mapping) applied
    src = pc.list_value_length(table.column("src_ids")).to_numpy()
    if "tgt_ids" not in dataset.column_names:
        return src.astype(np.int64) + 1
    tgt = pc.list_value_length(table.column("tgt_ids")).to_numpy()
    return np.maximum(src, tgt).astype(np.int64) + 1


def make_batches(
    dataset,
    max_tokens: int,
    shuffle: bool,
    seed: int,
    epoch: int = 0,
    start_batch: int = 0,
    num_replicas: int = 1,
    rank: int = 0,
) -> Iterator[Batch]:
    """Batches of an encoded datasets.Dataset (columns src_ids[, tgt_ids]); ids are row indices."""
    sampler = TokenBatchSampler(example_lengths(dataset), max_tokens, shuffle, seed, num_replicas, rank)
    cols = [c for c in ("src_ids", "tgt_ids") if c in dataset.column_names]
    view = dataset.select_columns(cols)
    for idx in sampler.iterate(epoch, start_batch):
        rows = view[idx]  # dict of column -> list, one Arrow take per batch
        yield collate([{"id": i, **{c: rows[c][k] for c in cols}} for k, i in enumerate(idx)])
