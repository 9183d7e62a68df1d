"""Incremental decoding with KVCache equals the full pass; cross-attention projects once; reorder."""

import pytest
import torch

from translate.attention import KVCache, MultiHeadAttention

E, H = 16, 4


@pytest.mark.parametrize("backend", ["math", "sdpa"])
@pytest.mark.parametrize("window", [None, 2])
def test_self_attention_cache_step_by_step_equals_full_causal_pass(backend, window):
    mha = MultiHeadAttention(E, H, backend=backend, window=window).eval()
    x = torch.randn(2, 7, E)
    full, _ = mha(x, causal=True)
    cache = KVCache()
    steps = [mha(x[:, t : t + 1], causal=True, cache=cache)[0] for t in range(7)]
    assert len(cache) == 7 and cache.k.shape == (2, H, 7, E // H)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-4)


def test_self_attention_cache_accepts_chunks():
    mha = MultiHeadAttention(E, H, backend="sdpa").eval()
    x = torch.randn(2, 7, E)
    full, _ = mha(x, causal=True)
    cache = KVCache()
    first, _ = mha(x[:, :4], causal=True, cache=cache)  # prefill
    rest = [mha(x[:, t : t + 1], causal=True, cache=cache)[0] for t in range(4, 7)]
    torch.testing.assert_close(torch.cat([first, *rest], dim=1), full, atol=1e-5, rtol=1e-4)


def test_cache_mask_grows_with_steps():
    cache = KVCache()
    k = torch.randn(2, H, 1, 4)
    cache.append(k, k)
    assert cache.key_padding_mask is None
    _, _, mask = cache.append(k, k, torch.tensor([[False], [True]]))
    assert mask.tolist() == [[False, False], [False, True]]
    _, _, mask = cache.append(k, k)
    assert mask.tolist() == [[False, False, False], [False, True, False]]


def test_cross_attention_cache_projects_memory_once():
    mha = MultiHeadAttention(E, H, backend="sdpa").eval()
    calls = []
    mha.k_proj.register_forward_hook(lambda *_: calls.append("k"))
    mha.v_proj.register_forward_hook(lambda *_: calls.append("v"))
    x, memory = torch.randn(2, 4, E), torch.randn(2, 6, E)
    pad = torch.tensor([[False] * 6, [False] * 3 + [True] * 3])
    full, _ = mha(x, memory, key_padding_mask=pad)
    calls.clear()
    cache = mha.cache_memory(memory, pad)
    assert cache.k.shape == cache.v.shape == (2, H, 6, E // H) and cache.key_padding_mask is pad
    steps = [mha(x[:, t : t + 1], cache)[0] for t in range(4)]
    assert calls == ["k", "v"]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-4)


def test_a_cached_memory_is_not_mixed_with_a_mask_or_a_self_attention_cache():
    mha = MultiHeadAttention(E, H).eval()
    x, memory = torch.randn(2, 1, E), torch.randn(2, 6, E)
    cache = mha.cache_memory(memory)
    with pytest.raises(ValueError, match="carries its own key_padding_mask"):
        mha(x, cache, key_padding_mask=torch.zeros(2, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match="cache serves self-attention"):
        mha(x, memory, cache=KVCache())


def test_reorder_for_beams_and_shrinking():
    mha = MultiHeadAttention(E, H, backend="math").eval()
    x, memory = torch.randn(3, 5, E), torch.randn(3, 6, E)
    pad = torch.arange(6)[None, :] >= torch.tensor([6, 2, 4])[:, None]
    self_cache, cross_cache = KVCache(), mha.cache_memory(memory, pad)
    for t in range(3):
        mha(x[:, t : t + 1], causal=True, cache=self_cache)
        mha(x[:, t : t + 1], cross_cache)
    index = torch.tensor([2, 2, 0])  # beams expanded from row 2, row 1 finished and dropped
    assert self_cache.reorder(index) is self_cache
    cross_cache.reorder(index)
    assert torch.equal(cross_cache.key_padding_mask, pad[index])
    step = x[index, 3:4]
    out_self, _ = mha(step, causal=True, cache=self_cache)
    ref_self, _ = mha(x[index, :4], causal=True)
    torch.testing.assert_close(out_self, ref_self[:, -1:], atol=1e-5, rtol=1e-4)
    out_cross, _ = mha(step, cross_cache)
    ref_cross, _ = mha(step, memory[index], key_padding_mask=pad[index])
    torch.testing.assert_close(out_cross, ref_cross, atol=1e-5, rtol=1e-4)


def test_empty_cache():
    cache = KVCache()
    assert cache.is_empty and len(cache) == 0
    assert cache.reorder(torch.tensor([0])) is cache and cache.is_empty


def test_appends_write_in_place_and_reorder_keeps_the_capacity():
    """The buffers grow by doubling: appends within the capacity copy no history (same storage); a reorder
    copies the used positions once into a buffer of the same capacity; the keys equal a plain cat/index."""
    cache, keys, vals = KVCache(), [], []
    with torch.no_grad():
        for t in range(40):
            rows = 3 if t <= 20 else 4  # the reorder at t = 20 makes 4 rows of 3
            k, v = torch.randn(rows, H, 1, 4), torch.randn(rows, H, 1, 4)
            keys.append(k), vals.append(v)
            before = (cache.capacity, None if cache.is_empty else cache._k.data_ptr())
            cache.append(k, v)
            if before[1] is not None and len(cache) <= before[0]:
                assert cache._k.data_ptr() == before[1]  # written in place
            if t == 20:
                index = torch.tensor([2, 0, 0, 1])
                cap = cache.capacity
                cache.reorder(index)
                keys, vals = [x[index] for x in keys], [x[index] for x in vals]
                assert cache.capacity == cap and len(cache) == 21
    assert cache.capacity == 64 and len(cache) == 40  # 16 -> 32 -> 64
    torch.testing.assert_close(cache.k, torch.cat(keys, 2), rtol=0, atol=0)
    torch.testing.assert_close(cache.v, torch.cat(vals, 2), rtol=0, atol=0)
    allocated, used = cache.memory()
    assert allocated == 4 * 64 * 2 * H * 4 * 4 and used == 4 * 40 * 2 * H * 4 * 4
