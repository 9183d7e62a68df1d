"""Triton flash attention (translate/attention/triton_flash.py) against the math reference.

On a machine without CUDA these run through Triton's interpreter (tests/conftest.py sets
TRITON_INTERPRET=1 before triton is imported), with 16 x 16 tiles, so the small shapes below still cross
several query and key blocks. Tolerance is relative to PyTorch's own error at the input dtype:
max|ours - ref| <= 2 * max|math_same_dtype - ref| + atol * max(1, max|ref|), with ref = math in float64.

bf16: the interpreter's tl.dot on two bf16 tiles returns garbage (triton 3.9.0), so under the interpreter
the launcher feeds bf16 tiles to tl.dot as fp32 (DOT_DTYPE); bf16 tests here therefore check bf16
loads, stores, casts, masks and fp32 accumulation, not the bf16 tensor-core dot, which only a GPU runs.
"""

import pytest
import torch

pytest.importorskip("triton", reason="triton is not installed: the fused kernels cannot be tested")

from translate.attention.functional import scaled_dot_product_math  # noqa: E402
from translate.attention.triton_flash import flash_attention  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # compiled kernels on a GPU, else the interpreter
ATOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}


def _padding_mask(lengths, S):
    return None if lengths is None else torch.arange(S)[None, :] >= lengths[:, None]  # (B, S) True = pad


def _run(fn, q, k, v, grad_out, device="cpu"):
    """out and (dq, dk, dv) of fn on leaf copies of q, k, v on device, returned on the CPU."""
    q, k, v = (t.detach().to(device).requires_grad_(True) for t in (q, k, v))
    out = fn(q, k, v)
    out.backward(grad_out.to(device, out.dtype))
    return out.detach().cpu(), tuple(t.grad.cpu() for t in (q, k, v))


def _assert_close(name, ours, same, ref, dtype):
    err = (ours.double() - ref).abs().max().item()
    bound = 2 * (same.double() - ref).abs().max().item() + ATOL[dtype] * max(1.0, ref.abs().max().item())
    assert err <= bound, f"{name}: max error {err:.3g} > bound {bound:.3g} ({dtype})"


def _assert_matches_math(B, H, T, S, D, dtype, lengths=None, causal=False, window=None, strided_q=False):
    """Assert our kernel's output and dq, dk, dv match the math path (float64 reference); -> (out, grads)."""
    torch.manual_seed(T * 100 + S)
    if strided_q:  # (B, T, H, D) seen as (B, H, T, D), as multi-head projections produce
        q = torch.randn(B, T, H, D).transpose(1, 2)
    else:
        q = torch.randn(B, H, T, D)
    k, v = torch.randn(B, H, S, D), torch.randn(B, H, S, D)
    grad_out = torch.randn(B, H, T, D)
    klen = None if lengths is None else torch.tensor(lengths, dtype=torch.int32)
    mask = _padding_mask(klen, S)
    scale = D ** -0.5

    def math(q, k, v):
        m = None if mask is None else mask.to(q.device)
        out, _ = scaled_dot_product_math(q, k, v, m, causal=causal, window=window, scale=scale)
        return out

    ref, ref_g = _run(math, q.double(), k.double(), v.double(), grad_out.double())
    same, same_g = _run(math, q.to(dtype), k.to(dtype), v.to(dtype), grad_out, DEVICE)
    klen_dev = None if klen is None else klen.to(DEVICE)
    ours, ours_g = _run(lambda q, k, v: flash_attention(q, k, v, klen_dev, causal, window, scale),
                        q.to(dtype), k.to(dtype), v.to(dtype), grad_out, DEVICE)
    assert ours.dtype == dtype and ours.shape == (B, H, T, D)
    _assert_close("out", ours, same, ref, dtype)
    for name, a, b, c in zip(("dq", "dk", "dv"), ours_g, same_g, ref_g):
        assert a.dtype == dtype and a.shape == c.shape
        _assert_close(name, a, b, c, dtype)
    return ours, ours_g


@pytest.mark.parametrize(
    "B,H,T,S,D,dtype,lengths,causal,window",
    [
        (2, 2, 7, 13, 16, torch.float32, [13, 5], False, None),     # odd lengths, padding
        (2, 1, 17, 17, 32, torch.float32, [17, 9], True, None),     # causal, last row alone in block 2
        (1, 2, 40, 40, 64, torch.float32, None, False, 1),          # window reaching just over a block edge
        (2, 1, 33, 34, 24, torch.float32, [34, 30], True, 4),       # causal + window, D not a power of 2
        (1, 1, 13, 7, 16, torch.float32, None, False, None),        # fewer keys than queries
        (2, 2, 7, 13, 32, torch.float16, [13, 6], True, None),
        (2, 1, 9, 17, 16, torch.bfloat16, [17, 11], False, 3),
        (1, 1, 3, 5, 128, torch.float16, None, False, None),        # the largest head dim, once
    ],
)
def test_flash_matches_math(B, H, T, S, D, dtype, lengths, causal, window):
    _assert_matches_math(B, H, T, S, D, dtype, lengths, causal, window)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_flash_one_token_query_against_cache(dtype):
    """Decoding: T=1 sees every cached key under causal masking (bottom-right alignment)."""
    _assert_matches_math(2, 2, 1, 29, 32, dtype, lengths=[29, 17], causal=True, strided_q=True)


def test_flash_fully_masked_rows_are_zero_without_nan():
    # batch 1 has no keys at all; under causal with S < T the first queries see none either.
    out, grads = _assert_matches_math(2, 1, 9, 5, 16, torch.float32, lengths=[5, 0], causal=True)
    assert torch.all(out[1] == 0) and torch.all(out[0, :, :4] == 0)
    for g in grads:
        assert torch.isfinite(g).all()
    assert torch.all(grads[0][1] == 0) and torch.all(grads[1][1] == 0) and torch.all(grads[2][1] == 0)


def test_flash_window_skips_key_blocks_and_padding_is_never_read():
    """Keys outside every query's window (whole blocks) and padded keys hold NaN: a kernel that loaded and
    multiplied them would return NaN (0 * NaN), so finite, correct results show the blocks are skipped."""
    B, H, T, S, D, w = 1, 1, 16, 64, 16, 4                  # queries sit at positions 48..63, see keys >= 44
    q, k, v = torch.randn(B, H, T, D), torch.randn(B, H, S, D), torch.randn(B, H, S, D)
    lengths = torch.tensor([60], dtype=torch.int32)
    poisoned_k, poisoned_v = k.clone(), v.clone()
    for t in (poisoned_k, poisoned_v):
        t[:, :, :32] = float("nan")                         # key blocks 0 and 1: outside every window
        t[:, :, 60:] = float("nan")                         # padding
    qd, kd, vd = (t.to(DEVICE).requires_grad_(True) for t in (q, poisoned_k, poisoned_v))
    out = flash_attention(qd, kd, vd, lengths.to(DEVICE), False, w, D ** -0.5)
    out.sum().backward()                                    # dO with zero strides (expanded ones)
    ref, _ = scaled_dot_product_math(q, k, v, key_padding_mask=_padding_mask(lengths, S), window=w)
    assert torch.isfinite(out).all() and torch.allclose(out.cpu(), ref, atol=1e-5)
    assert torch.isfinite(qd.grad).all()
    assert torch.all(kd.grad[:, :, :32] == 0) and torch.all(vd.grad[:, :, 60:] == 0)


def test_flash_rejects_unsupported_inputs():
    q = torch.randn(1, 1, 4, 8, device=DEVICE)
    with pytest.raises(AssertionError, match="head dim 8"):
        flash_attention(q, q, q)
    q = torch.randn(1, 1, 4, 16, device=DEVICE)
    with pytest.raises(AssertionError, match="dtypes differ"):
        flash_attention(q, q.half(), q.half())
    with pytest.raises(AssertionError, match="key_lengths"):
        flash_attention(q, q, q, torch.tensor([1.0], device=DEVICE))
