"""Decoding's few-query attention (few_queries.py) against the math reference, and where the dispatcher
uses it: CPU inference with at most FEW queries, never under autograd or when weights are asked for."""

import pytest
import torch

from translate.attention import KVCache, few_queries
from translate.attention.backend import scaled_dot_product
from translate.attention.functional import scaled_dot_product_math

pytestmark = pytest.mark.usefixtures("one_thread")


def qkv(B, H, T, S, D, Dv=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, H, T, D, generator=g), torch.randn(B, H, S, D, generator=g),
            torch.randn(B, H, S, Dv or D, generator=g))  # fmt: skip


@pytest.mark.parametrize("T", [1, 5, few_queries.FEW])
@pytest.mark.parametrize("masked", [False, True])
def test_the_math_references_output(T, masked):
    q, k, v = qkv(3, 4, T, 11, 16, Dv=8)
    mask = None
    if masked:
        mask = torch.zeros(3, 11, dtype=torch.bool)
        mask[0, 7:] = True  # padding
        mask[1, :] = True  # a row that sees no key: 0, as every backend gives
    got = few_queries.scaled_dot_product_few(q, k, v, mask, scale=0.3)
    want, _ = scaled_dot_product_math(q, k, v, mask, scale=0.3)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    if masked:
        assert torch.equal(got[1], torch.zeros_like(got[1]))


def test_the_decoding_caches_are_read_in_place():
    """A self-attention cache is a view of its preallocated buffer; the cross-attention keys are stored
    contiguous: both merge (B, H) without a copy, and the output is the reference's."""
    q, k, v = qkv(2, 4, 1, 5, 8)
    cache = KVCache()
    for s in range(5):
        keys, values, _ = cache.append(k[:, :, s : s + 1], v[:, :, s : s + 1])
    assert cache.capacity > len(cache) and not keys.is_contiguous()
    assert keys.reshape(8, 5, 8).data_ptr() == keys.data_ptr()  # a view, not a copy
    got = few_queries.scaled_dot_product_few(q, keys, values)
    torch.testing.assert_close(got, scaled_dot_product_math(q, k, v)[0], rtol=1e-5, atol=1e-6)


def test_the_dispatcher_uses_it_only_for_cpu_decoding(monkeypatch):
    calls = []
    real = few_queries.scaled_dot_product_few
    monkeypatch.setattr(few_queries, "scaled_dot_product_few", lambda *a: calls.append(a) or real(*a))
    q, k, v = qkv(2, 2, 1, 6, 8)
    with torch.no_grad():
        for backend in ("math", "sdpa"):
            out, _ = scaled_dot_product(q, k, v, causal=True, backend=backend)  # one query: sees every key
            torch.testing.assert_close(out, scaled_dot_product_math(q, k, v)[0], rtol=1e-5, atol=1e-6)
        assert len(calls) == 2
        scaled_dot_product(q, k, v, backend="sdpa", need_weights=True)  # weights: math
        scaled_dot_product(*qkv(2, 2, few_queries.FEW + 1, 6, 8), backend="sdpa")  # too many queries
        scaled_dot_product(*qkv(2, 2, 3, 6, 8), causal=True, backend="sdpa")  # causal over 3 queries
        scaled_dot_product(q, k, v, window=2, backend="sdpa")
        scaled_dot_product(q.double(), k.double(), v.double(), backend="sdpa")  # fp64 is served
        assert len(calls) == 3
    q.requires_grad_(True)
    out, _ = scaled_dot_product(q, k, v, backend="sdpa")  # training: autograd, never this form
    out.sum().backward()
    assert len(calls) == 3 and q.grad is not None
