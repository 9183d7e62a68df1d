"""Token-budget batches: bucketed by length, shuffled by (seed, epoch), resumable, sharded over DDP ranks.

Legend: B batch, S source length (incl. EOS), T target length (incl. BOS or EOS).

A batch's padded size B * max(length) never exceeds max_tokens, where an example's length is
max(len(src_ids), len(tgt_ids)) + 1 (the +1 is the EOS on the source and on tgt_out, the BOS on tgt_in).
An example longer than max_tokens on its own gets a batch of one rather than being dropped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc
import torch
from torch.nn.utils.rnn import pad_sequence

from translate.data.errors import DataError
from translate.data.vocab import BOS_ID, EOS_ID, PAD_ID


@dataclass
class Batch:
    """Padded tensors for teacher forcing (the models build their masks from PAD_ID themselves)."""

    src: torch.Tensor  # (B, S) source ids + EOS, right-padded with PAD_ID
    tgt_in: torch.Tensor  # (B, T) BOS + target ids
    tgt_out: torch.Tensor  # (B, T) target ids + EOS (labels; PAD ignored by the loss)
    n_tgt_tokens: int  # non-pad target tokens, EOS included

    def to(self, device, non_blocking: bool = False) -> Batch:
        src, tgt_in, tgt_out = (
            t.to(device, non_blocking=non_blocking) for t in (self.src, self.tgt_in, self.tgt_out)
        )
        return Batch(src, tgt_in, tgt_out, self.n_tgt_tokens)


def _pad(rows: list[list[int]]) -> torch.Tensor:
    """Id lists -> (B, max length) long tensor, right-padded with PAD_ID."""
    tensors = [torch.tensor(r, dtype=torch.long) for r in rows]
    return pad_sequence(tensors, batch_first=True, padding_value=PAD_ID)


def pad_sources(rows: Sequence[Sequence[int]], device=None) -> torch.Tensor:
    """Source id lists (no EOS) -> (B, S) ids + EOS, right-padded with PAD_ID: a batch's `src`, and what
    search decodes."""
    src = _pad([list(r) + [EOS_ID] for r in rows])
    return src.to(device) if device is not None else src


def collate(examples: Sequence[dict]) -> Batch:
    """Examples with "src_ids" and "tgt_ids" (no BOS/EOS) -> a teacher-forcing Batch."""
    if not examples:
        raise ValueError("collate: empty list of examples")
    tgt = [list(e["tgt_ids"]) for e in examples]
    tgt_out = _pad([t + [EOS_ID] for t in tgt])  # (B, T)
    return Batch(
        src=pad_sources([e["src_ids"] for e in examples]),  # (B, S)
        tgt_in=_pad([[BOS_ID] + t for t in tgt]),  # (B, T)
        tgt_out=tgt_out,
        n_tgt_tokens=int(tgt_out.ne(PAD_ID).sum()),
    )


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
    length order (for evaluation and decoding). With num_replicas > 1, rank r takes every num_replicas-th
    batch: shards are disjoint, cover the split and have equal batch counts.
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
        self._cache: tuple[int, list[list[int]]] | None = None

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

    def __len__(self) -> int:
        """This rank's batches in an epoch (with bucketing the same in every epoch: the packing sees the same
        sorted lengths; epoch 0's count without)."""
        return len(self.all_batches(0)) // self.num_replicas


def example_lengths(dataset) -> np.ndarray:
    """max(len(src_ids), len(tgt_ids)) + 1 per example, read from the Arrow columns without Python lists."""
    table = dataset.with_format("arrow")[:]  # pyarrow.Table, row selection (indices mapping) applied
    src = pc.list_value_length(table.column("src_ids")).to_numpy()
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
    """Teacher-forcing batches of an encoded datasets.Dataset (columns src_ids, tgt_ids): this rank's
    batches of `epoch` from `start_batch` on, in TokenBatchSampler's order."""
    sampler = TokenBatchSampler(example_lengths(dataset), max_tokens, shuffle, seed, num_replicas, rank)
    view = dataset.select_columns(["src_ids", "tgt_ids"])
    for idx in sampler.iterate(epoch, start_batch):
        rows = view[idx]  # dict of column -> list, one Arrow take per batch
        yield collate([{"src_ids": s, "tgt_ids": t} for s, t in zip(rows["src_ids"], rows["tgt_ids"])])
