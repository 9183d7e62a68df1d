"""Paged KV cache: block accounting, forks share blocks (copy-on-write of one partial block), and the
Transformer decodes through it exactly as through the contiguous KVCache."""

import pytest
import torch

from translate.attention.paged import BlockPool, PagedKVCache, gather_blocks, paged_attention_reference
from translate.models.transformer import Transformer

pytestmark = pytest.mark.usefixtures("one_thread")


def fill(cache, steps):
    """Run `steps` decode steps writing each row's position into layer 0 (value = row * 100 + position)."""
    for _ in range(steps):
        cache.begin_step()
        slots, _, _ = cache._step
        pool = cache.pool.k[0].view(-1, cache.pool.heads, cache.pool.head_dim)
        for row, slot in enumerate(slots.tolist()):
            pool[slot] = row * 100 + cache.lengths[row]
        cache.end_step()


def test_blocks_are_allocated_per_block_size_and_freed_when_rows_leave():
    pool = BlockPool(layers=1, heads=1, head_dim=2, block_size=4, num_blocks=2)
    cache = PagedKVCache(pool, rows=3)
    fill(cache, 5)  # 5 tokens: 2 blocks per row, 6 blocks: the pool doubled twice
    assert [len(t) for t in cache.tables] == [2, 2, 2] and pool.in_use == 6 and pool.num_blocks == 8
    assert cache.waste() == 3 * 3  # each row uses 1 of its last block's 4 slots
    cache.reorder(torch.tensor([2]))  # rows 0 and 1 leave
    assert pool.in_use == 2
    cache.reorder(torch.tensor([], dtype=torch.long))
    assert pool.in_use == 0 and pool.refs == [0] * 8


def test_beam_fork_shares_blocks_and_copies_only_the_partial_one():
    pool = BlockPool(layers=1, heads=1, head_dim=2, block_size=4, num_blocks=8)
    cache = PagedKVCache(pool, rows=1)
    fill(cache, 6)  # one full block, one block with 2 tokens
    full, partial = cache.tables[0]
    cache.reorder(torch.tensor([0, 0, 0]))  # three beams from one: no K/V copied
    assert cache.tables == [[full, partial]] * 3 and pool.refs[full] == 3 and pool.copied_tokens == 0
    fill(cache, 1)
    assert [t[0] for t in cache.tables] == [full] * 3  # the full block stays shared
    assert len({t[1] for t in cache.tables}) == 3  # two rows copied the 2-token partial block
    assert pool.copied_tokens == 2 * 4 and pool.in_use == 4  # two whole blocks copied
    k = gather_blocks(pool.k[0], torch.tensor(cache.tables))  # (B,H,S,D)
    assert k[:, 0, :7, 0].tolist() == [[0, 1, 2, 3, 4, 5, 6], [0, 1, 2, 3, 4, 5, 106],
                                       [0, 1, 2, 3, 4, 5, 206]]  # fmt: skip
    assert cache.waste() == 3 * 1  # each beam's last block: 3 of 4 slots used


def test_reference_masks_the_slots_beyond_each_length():
    torch.manual_seed(0)
    q, kp, vp = torch.randn(2, 2, 1, 16), torch.randn(5, 4, 2, 16), torch.randn(5, 4, 2, 16)
    tables, lengths = torch.tensor([[4, 1], [2, 0]]), torch.tensor([6, 3])
    out = paged_attention_reference(q, kp, vp, tables, lengths)
    for b in range(2):
        k = torch.cat([kp[i] for i in tables[b]])[: lengths[b]].transpose(0, 1)  # (H, L, D)
        v = torch.cat([vp[i] for i in tables[b]])[: lengths[b]].transpose(0, 1)
        want = torch.softmax(q[b] @ k.transpose(1, 2) / 4.0, -1) @ v  # (H, 1, D)
        torch.testing.assert_close(out[b], want)


def test_transformer_decodes_through_the_paged_cache_like_the_contiguous_one():
    torch.manual_seed(0)
    model = Transformer(31, 31, d_model=32, ffn_dim=32, num_heads=2, encoder_layers=1, decoder_layers=2)
    model.eval()
    src = torch.randint(4, 31, (3, 7))
    pool = model.new_block_pool(block_size=4, num_blocks=2)
    plain, paged = model.encode(src), model.encode(src, paged=pool)
    tokens = torch.randint(4, 31, (3,))
    with torch.no_grad():
        for t in range(11):
            if t == 5:  # beam-style fork and drop: row 1 twice, row 0 leaves, row 2 moves first
                index = torch.tensor([2, 1, 1])
                plain, paged = model.reorder_state(plain, index), model.reorder_state(paged, index)
                tokens = tokens[index]
            a, plain = model.step(tokens, plain)
            b, paged = model.step(tokens, paged)
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
            tokens = a.argmax(-1)
    assert pool.in_use == 3 * 3 - 1  # 11 tokens = 3 blocks per row; the two copies of row 1 share block 0
    model.reorder_state(paged, torch.tensor([], dtype=torch.long))
    assert pool.in_use == 0


def test_the_pool_gives_memory_back_after_a_burst_and_keeps_what_rows_hold():
    pool = BlockPool(layers=1, heads=1, head_dim=2, block_size=4, num_blocks=2)
    burst = PagedKVCache(pool, rows=8)
    fill(burst, 8)  # 16 blocks in use: the pool doubled to 16
    assert pool.num_blocks == 16 and pool.trim() == 0  # all needed
    stay = PagedKVCache(pool, rows=1)
    fill(stay, 3)  # one more block: the pool doubles to 32, this row holds block 16
    held = stay.tables[0][0]
    assert pool.num_blocks == 32 and held == 16
    burst.release()  # the burst ends: 1 block in use, the pool keeps what sits below it
    assert pool.trim() == 32 - 17 and pool.num_blocks == 17
    before = pool.k[0][held].clone()
    fill(stay, 1)  # the row still reads and writes its block
    assert torch.equal(pool.k[0][held][:3], before[:3]) and pool.k[0][held][3, 0, 0] == 3
    stay.release()
    assert pool.trim() == 17 - 2 and pool.num_blocks == 2 and pool.in_use == 0
    assert pool.allocate() == 0  # the lowest free id first
