"""Token-budget batching: cap, coverage, determinism, resume, DDP shards, padding; collate layout."""

import datasets
import numpy as np
import pytest
import torch

from translate.data.batching import (
    Batch,
    TokenBatchSampler,
    collate,
    example_lengths,
    make_batches,
    padding_ratio,
)
from translate.data.errors import DataError
from translate.data.vocab import BOS_ID, EOS_ID, PAD_ID


def random_lengths(n=600, seed=0):
    return np.random.default_rng(seed).integers(2, 60, n).tolist()


def test_collate_places_bos_eos_for_teacher_forcing():
    examples = [
        {"src_ids": [10, 11, 12], "tgt_ids": [20, 21], "id": 7},
        {"src_ids": [13], "tgt_ids": [22, 23, 24, 25], "id": 3},
    ]
    b = collate(examples)
    assert b.src.tolist() == [[10, 11, 12, EOS_ID], [13, EOS_ID, PAD_ID, PAD_ID]]  # (B, S)
    assert b.src_lengths.tolist() == [4, 2]
    assert b.tgt_in.tolist() == [[BOS_ID, 20, 21, PAD_ID, PAD_ID], [BOS_ID, 22, 23, 24, 25]]  # (B, T)
    assert b.tgt_out.tolist() == [[20, 21, EOS_ID, PAD_ID, PAD_ID], [22, 23, 24, 25, EOS_ID]]
    assert b.src_pad_mask.tolist() == [[False] * 4, [False, False, True, True]]
    assert b.tgt_pad_mask.tolist() == [[False, False, False, True, True], [False] * 5]
    assert b.n_tgt_tokens == 3 + 5
    assert b.ids.tolist() == [7, 3]
    assert b.src.dtype == b.tgt_in.dtype == torch.long and b.src_pad_mask.dtype == torch.bool
    assert len(b) == 2 and isinstance(b.to("cpu"), Batch)


def test_collate_source_only_batch_for_inference():
    b = collate([{"src_ids": [5, 6]}, {"src_ids": [7]}])
    assert b.tgt_in is None and b.tgt_out is None and b.tgt_pad_mask is None and b.n_tgt_tokens == 0
    assert b.ids.tolist() == [0, 1]
    assert b.src.tolist() == [[5, 6, EOS_ID], [7, EOS_ID, PAD_ID]]


@pytest.mark.parametrize("shuffle", [True, False])
def test_token_cap_holds_and_every_example_appears_once(shuffle):
    lengths = random_lengths()
    sampler = TokenBatchSampler(lengths, max_tokens=256, shuffle=shuffle, seed=1)
    for epoch in (0, 1):
        batches = list(sampler.iterate(epoch))
        assert len(batches) == len(sampler)
        assert all(len(b) * max(lengths[i] for i in b) <= 256 for b in batches)
        flat = sorted(i for b in batches for i in b)
        assert flat == list(range(len(lengths)))


def test_oversized_example_gets_a_batch_of_its_own():
    batches = list(TokenBatchSampler([5, 300, 5, 5], max_tokens=100, shuffle=False, seed=0))
    assert [1] in batches and sorted(i for b in batches for i in b) == [0, 1, 2, 3]


def test_shuffle_is_deterministic_by_seed_and_epoch():
    lengths = random_lengths()
    a = TokenBatchSampler(lengths, 256, shuffle=True, seed=3)
    b = TokenBatchSampler(lengths, 256, shuffle=True, seed=3)
    assert list(a.iterate(0)) == list(b.iterate(0))
    assert list(a.iterate(0)) != list(a.iterate(1))
    assert list(a.iterate(0)) != list(TokenBatchSampler(lengths, 256, shuffle=True, seed=4).iterate(0))
    a.set_epoch(1)
    assert list(a) == list(b.iterate(1))


def test_resume_equals_the_tail_of_an_uninterrupted_epoch():
    lengths = random_lengths()
    full = list(TokenBatchSampler(lengths, 256, shuffle=True, seed=0).iterate(2))
    resumed = TokenBatchSampler(lengths, 256, shuffle=True, seed=0)  # a fresh process after a restart
    assert list(resumed.iterate(2, start_batch=5)) == full[5:]
    resumed.set_epoch(2, start_batch=5)
    assert list(resumed) == full[5:] and len(resumed) == len(full) - 5


@pytest.mark.parametrize("replicas", [2, 3, 4])
def test_ddp_shards_are_disjoint_cover_and_have_equal_counts(replicas):
    lengths = random_lengths(n=601)
    shards = [list(TokenBatchSampler(lengths, 256, True, 0, num_replicas=replicas, rank=r).iterate(1))
              for r in range(replicas)]
    assert len({len(s) for s in shards}) == 1
    seen = [i for s in shards for b in s for i in b]
    assert sorted(seen) == list(range(len(lengths)))  # disjoint (no repeats) and covering
    assert all(len(b) * max(lengths[i] for i in b) <= 256 for s in shards for b in s)


def test_too_few_examples_for_the_ranks_is_a_data_error():
    with pytest.raises(DataError, match="shard"):
        list(TokenBatchSampler([3], 100, False, 0, num_replicas=2, rank=0))
    with pytest.raises(DataError, match="rank"):
        TokenBatchSampler([3, 4], 100, False, 0, num_replicas=2, rank=2)


def test_bucketing_lowers_padding():
    lengths = random_lengths(n=2000)
    bucketed = TokenBatchSampler(lengths, 512, shuffle=True, seed=0)
    unbucketed = TokenBatchSampler(lengths, 512, shuffle=True, seed=0, bucket=False)
    assert bucketed.padding_ratio() < 0.1 < unbucketed.padding_ratio()
    batches = list(bucketed.iterate(0))
    assert bucketed.padding_ratio() == pytest.approx(padding_ratio(lengths, batches))


def test_make_batches_reads_rows_by_index_even_after_select():
    rng = np.random.default_rng(0)
    src = [rng.integers(4, 50, rng.integers(1, 20)).tolist() for _ in range(200)]
    tgt = [rng.integers(4, 50, rng.integers(1, 20)).tolist() for _ in range(200)]
    ds = datasets.Dataset.from_dict({"src_ids": src, "tgt_ids": tgt}).select(range(50, 150))
    lengths = example_lengths(ds)
    assert lengths.tolist() == [max(len(src[i]), len(tgt[i])) + 1 for i in range(50, 150)]
    seen = []
    for b in make_batches(ds, max_tokens=128, shuffle=True, seed=0, epoch=1):
        assert b.src.numel() <= 128 and b.tgt_in.numel() <= 128
        for row, i in enumerate(b.ids.tolist()):
            n = len(src[50 + i])
            assert b.src[row, :n].tolist() == src[50 + i] and b.src[row, n] == EOS_ID
            assert b.tgt_out[row, : len(tgt[50 + i])].tolist() == tgt[50 + i]
        seen += b.ids.tolist()
    assert sorted(seen) == list(range(100))
    tail = list(make_batches(ds, 128, True, 0, epoch=1, start_batch=3))
    full = list(make_batches(ds, 128, True, 0, epoch=1))
    assert [b.ids.tolist() for b in tail] == [b.ids.tolist() for b in full[3:]]


def test_make_batches_without_targets_for_translation():
    ds = datasets.Dataset.from_dict({"src_ids": [[5, 6, 7], [8], [9, 10]]})
    batches = list(make_batches(ds, max_tokens=100, shuffle=False, seed=0))
    assert all(b.tgt_in is None for b in batches)
    rows = {i: r for b in batches for i, r in zip(b.ids.tolist(), b.src.tolist())}
    assert rows[1][:2] == [8, EOS_ID] and rows[0] == [5, 6, 7, EOS_ID]
