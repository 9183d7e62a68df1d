"""Token-budget batching: cap, coverage, determinism, resume, DDP shards, padding; collate layout."""

import datasets
import numpy as np
import pytest
import torch

from translate.data.batching import Batch, TokenBatchSampler, collate, example_lengths, make_batches
from translate.data.errors import DataError
from translate.data.vocab import BOS_ID, EOS_ID, PAD_ID


def random_lengths(n=600, seed=0):
    return np.random.default_rng(seed).integers(2, 60, n).tolist()


def test_collate_places_bos_eos_for_teacher_forcing():
    examples = [
        {"src_ids": [10, 11, 12], "tgt_ids": [20, 21]},
        {"src_ids": [13], "tgt_ids": [22, 23, 24, 25]},
    ]
    b = collate(examples)
    assert b.src.tolist() == [[10, 11, 12, EOS_ID], [13, EOS_ID, PAD_ID, PAD_ID]]  # (B, S)
    assert b.tgt_in.tolist() == [[BOS_ID, 20, 21, PAD_ID, PAD_ID], [BOS_ID, 22, 23, 24, 25]]  # (B, T)
    assert b.tgt_out.tolist() == [[20, 21, EOS_ID, PAD_ID, PAD_ID], [22, 23, 24, 25, EOS_ID]]
    assert b.n_tgt_tokens == 3 + 5
    assert b.src.dtype == b.tgt_in.dtype == b.tgt_out.dtype == torch.long
    moved = b.to("cpu")
    assert isinstance(moved, Batch) and moved.n_tgt_tokens == 8 and torch.equal(moved.tgt_out, b.tgt_out)


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
    batches = list(TokenBatchSampler([5, 300, 5, 5], max_tokens=100, shuffle=False, seed=0).iterate(0))
    assert [1] in batches and sorted(i for b in batches for i in b) == [0, 1, 2, 3]


def test_shuffle_is_deterministic_by_seed_and_epoch():
    lengths = random_lengths()
    a = TokenBatchSampler(lengths, 256, shuffle=True, seed=3)
    b = TokenBatchSampler(lengths, 256, shuffle=True, seed=3)
    assert list(a.iterate(0)) == list(b.iterate(0))
    assert list(a.iterate(0)) != list(a.iterate(1))
    assert list(a.iterate(0)) != list(TokenBatchSampler(lengths, 256, shuffle=True, seed=4).iterate(0))
    assert list(a.iterate(1)) == list(b.iterate(1))
    assert len(a) == len(list(a.iterate(0))) == len(list(a.iterate(1)))  # bucketed: the same count each epoch


def test_resume_equals_the_tail_of_an_uninterrupted_epoch():
    lengths = random_lengths()
    full = list(TokenBatchSampler(lengths, 256, shuffle=True, seed=0).iterate(2))
    resumed = TokenBatchSampler(lengths, 256, shuffle=True, seed=0)  # a fresh process after a restart
    assert list(resumed.iterate(2, start_batch=5)) == full[5:]


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
        list(TokenBatchSampler([3], 100, False, 0, num_replicas=2, rank=0).iterate(0))
    with pytest.raises(DataError, match="rank"):
        TokenBatchSampler([3, 4], 100, False, 0, num_replicas=2, rank=2)


def padding_share(lengths, batches) -> float:
    """1 - real tokens / padded tokens, padded = len(batch) * its longest example."""
    real = sum(lengths[i] for b in batches for i in b)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return 1.0 - real / padded


def test_bucketing_lowers_padding():
    lengths = random_lengths(n=2000)
    bucketed = TokenBatchSampler(lengths, 512, shuffle=True, seed=0).iterate(0)
    unbucketed = TokenBatchSampler(lengths, 512, shuffle=True, seed=0, bucket=False).iterate(0)
    assert padding_share(lengths, list(bucketed)) < 0.1 < padding_share(lengths, list(unbucketed))


def test_make_batches_reads_rows_by_index_even_after_select():
    rng = np.random.default_rng(0)
    src = [rng.integers(4, 50, rng.integers(1, 20)).tolist() for _ in range(200)]
    tgt = [rng.integers(4, 50, rng.integers(1, 20)).tolist() for _ in range(200)]
    ds = datasets.Dataset.from_dict({"src_ids": src, "tgt_ids": tgt}).select(range(50, 150))
    lengths = example_lengths(ds)
    assert lengths.tolist() == [max(len(src[i]), len(tgt[i])) + 1 for i in range(50, 150)]
    order = list(TokenBatchSampler(lengths, 128, shuffle=True, seed=0).iterate(1))  # row indices per batch
    batches = list(make_batches(ds, max_tokens=128, shuffle=True, seed=0, epoch=1))
    assert len(batches) == len(order) and sorted(i for idx in order for i in idx) == list(range(100))
    for b, idx in zip(batches, order):
        assert b.src.numel() <= 128 and b.tgt_in.numel() <= 128
        for row, i in enumerate(idx):
            n = len(src[50 + i])
            assert b.src[row, :n].tolist() == src[50 + i] and b.src[row, n] == EOS_ID
            assert b.tgt_out[row, : len(tgt[50 + i])].tolist() == tgt[50 + i]
    tail = list(make_batches(ds, 128, True, 0, epoch=1, start_batch=3))
    assert len(tail) == len(batches) - 3
    for a, b in zip(tail, batches[3:]):
        assert torch.equal(a.src, b.src) and torch.equal(a.tgt_out, b.tgt_out)
