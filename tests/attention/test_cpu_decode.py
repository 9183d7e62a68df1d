"""The compiled few-query CPU kernel against PyTorch's SDPA and math; where it applies; its fallbacks."""

import pytest
import torch

from translate.attention import backend as backend_module
from translate.attention import cpu_decode
from translate.attention.backend import scaled_dot_product
from translate.attention.functional import scaled_dot_product_math

needs_kernel = pytest.mark.skipif(
    cpu_decode._library()[0] is None, reason=f"no compiled kernel here: {cpu_decode.status()}"
)


def _mask(lengths, keys):
    return torch.arange(keys)[None, :] >= torch.tensor(lengths)[:, None]  # (B,S) True = ignore


# (B, H, T, S, D, lengths): one query, a beam's queries, a single key, a row that sees no key, odd dims
CASES = [
    (3, 4, 1, 9, 64, [9, 4, 1]),
    (2, 2, 5, 7, 16, [7, 3]),
    (4, 1, 1, 1, 8, None),
    (3, 2, 3, 6, 12, [6, 0, 2]),
    (5, 3, 16, 33, 32, [33, 20, 1, 7, 33]),
    (2, 4, 2, 300, 64, [300, 151]),  # T x S past the kernel's stack buffer of 4096 scores
]


@needs_kernel
@pytest.mark.parametrize("b,h,t,s,d,lengths", CASES)
def test_kernel_matches_sdpa_and_math(b, h, t, s, d, lengths):
    g = torch.Generator().manual_seed(b * 100 + s)
    q, k, v = (torch.randn(b, h, n, d, generator=g) for n in (t, s, s))
    mask = None if lengths is None else _mask(lengths, s)
    got = cpu_decode.attend(q, k, v, mask)
    torch.testing.assert_close(got, cpu_decode.attend_reference(q, k, v, mask), rtol=1e-5, atol=1e-6)
    want, _ = scaled_dot_product_math(q, k, v, mask, False, None, 0.0, None)
    if mask is not None:
        want = want.masked_fill(mask.all(-1)[:, None, None, None], 0.0)  # the SDPA path zeroes empty rows
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    if lengths is not None and 0 in lengths:
        assert got[lengths.index(0)].abs().max() == 0  # a query that sees no key: zeros, not NaN


@needs_kernel
def test_kernel_reads_strided_caches_and_scale():
    """The decoder's layouts: cross-attention keys as (B,S,H,D) projections viewed (B,H,S,D), self-attention
    keys as the first S positions of a larger buffer, a beam's grouped queries as a transposed view."""
    g = torch.Generator().manual_seed(1)
    b, h, s, d, cap = 3, 4, 10, 16, 32
    k = torch.randn(b, s, h * d, generator=g).view(b, s, h, d).transpose(1, 2)  # (B,H,S,D), strided
    v = torch.randn(b, h, cap, d, generator=g)[:, :, :s]  # a buffer's first S positions
    q = torch.randn(b, 5, h, d, generator=g).transpose(1, 2)  # (B,H,5,D) from (B,G,H,D)
    mask = _mask([10, 6, 3], s)
    for scale in (None, 0.01):
        got = cpu_decode.attend(q, k, v, mask, scale)
        want = cpu_decode.attend_reference(q.contiguous(), k.contiguous(), v.contiguous(), mask, scale)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@needs_kernel
def test_kernel_on_two_threads_and_nan():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        g = torch.Generator().manual_seed(2)
        q, k, v = (torch.randn(64, 4, 1, 32, generator=g) for _ in range(3))
        torch.testing.assert_close(cpu_decode.attend(q, k, v), cpu_decode.attend_reference(q, k, v))
        q[3, 1, 0, 0] = float("nan")  # NaN propagates to that row and head only, as in SDPA
        out = cpu_decode.attend(q, k, v)
        assert out[3, 1].isnan().all() and not out[3, 0].isnan().any() and not out[4].isnan().any()
    finally:
        torch.set_num_threads(old)


@needs_kernel
def test_dispatch_takes_the_kernel_only_for_decoding_calls(monkeypatch):
    calls = []
    real = cpu_decode.attend
    monkeypatch.setattr(cpu_decode, "attend", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    q, k, v = (torch.randn(2, 2, n, 8) for n in (1, 6, 6))
    mask = _mask([6, 2], 6)
    with torch.no_grad():
        out, _ = scaled_dot_product(q, k, v, key_padding_mask=mask, causal=True, backend="sdpa")
    assert calls == [1]  # one query, causal bottom-right: sees every key, the kernel serves it
    want = backend_module._sdpa(q, k, v, mask, False, None, 0.0, None)
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-6)
    not_served = [
        dict(q=torch.randn(2, 2, 17, 8)),  # teacher forcing's many queries
        dict(q=q.double(), k=k.double(), v=v.double()),
        dict(causal_t=3),
        dict(window=2),
        dict(grad=True),
        dict(backend="math"),
    ]
    for case in not_served:
        qq, kk, vv = case.get("q", q), case.get("k", k), case.get("v", v)
        if "causal_t" in case:
            qq = torch.randn(2, 2, 3, 8)
        if case.get("grad"):
            qq = qq.clone().requires_grad_()
        with torch.set_grad_enabled(bool(case.get("grad"))):
            scaled_dot_product(qq, kk, vv, key_padding_mask=mask, causal="causal_t" in case,
                               window=case.get("window"), backend=case.get("backend", "sdpa"))  # fmt: skip
    assert calls == [1], "the kernel served a call it does not cover"


def _fresh_library(monkeypatch, tmp_path, **env):
    monkeypatch.setenv("TRANSLATE_KERNEL_CACHE", str(tmp_path / "kernels"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    cpu_decode._library.cache_clear()  # restore_library clears it again after the test
    return cpu_decode._library()


@pytest.fixture
def restore_library():
    yield
    cpu_decode._library.cache_clear()


@needs_kernel
def test_builds_into_its_cache_atomically(monkeypatch, tmp_path, restore_library):
    lib, reason = _fresh_library(monkeypatch, tmp_path)
    assert lib is not None and reason.startswith("compiled")
    files = sorted(p.name for p in (tmp_path / "kernels").iterdir())
    assert len(files) == 1 and files[0].startswith("cpu_decode-") and files[0].endswith(".so")  # no temp left


@pytest.mark.parametrize(
    "env,expected",
    [
        ({"TRANSLATE_CPU_KERNEL": "0"}, "switched off (TRANSLATE_CPU_KERNEL=0)"),
        ({"CC": "/bin/false"}, "/bin/false -O3 -march=native -fopenmp failed"),
        ({"CC": "/nonexistent/cc"}, "/nonexistent/cc failed to run"),
    ],
)
def test_falls_back_to_sdpa_with_the_reason(monkeypatch, tmp_path, restore_library, env, expected, caplog):
    with caplog.at_level("INFO", logger="translate.attention.cpu_decode"):
        lib, reason = _fresh_library(monkeypatch, tmp_path, **env)
    assert lib is None and reason.startswith(expected)
    assert expected in caplog.text
    q, k, v = (torch.randn(2, 2, n, 8) for n in (1, 5, 5))
    mask = _mask([5, 0], 5)
    assert not cpu_decode.applies(q, k, v, mask, False, None, 0.0)
    with torch.no_grad():
        out, _ = scaled_dot_product(q, k, v, key_padding_mask=mask, backend="sdpa")
    torch.testing.assert_close(out, cpu_decode.attend_reference(q, k, v, mask))
    assert out[1].abs().max() == 0
