"""Fused Triton additive attention (translate/attention/triton_additive.py) against the math reference.

Runs through Triton's interpreter on machines without CUDA (tests/conftest.py), with 16 x 16 x 16 tiles
(T x S x A), so T=20, S=35, A=33 cross several blocks of each; T < 16 runs the single-query path
(BLOCK_T = 1, no tl.dot) that decoding uses, T >= 16 the blocked path with tl.dot. Tolerance is relative
to PyTorch's own error at the input dtype:
max|ours - ref| <= 2 * max|math_same_dtype - ref| + atol * max(1, max|ref|), ref = math in float64.
bf16: under the interpreter tl.dot sees bf16 tiles as fp32 (the interpreter's bf16 dot returns garbage,
triton 3.9.0); tanh and the softmax are fp32 in every case. See tests/attention/test_triton_flash.py.
"""

import pytest
import torch

pytest.importorskip("triton", reason="triton is not installed: the fused kernels cannot be tested")

from translate.attention.functional import additive_math  # noqa: E402
from translate.attention.triton_additive import additive_attention  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # compiled kernels on a GPU, else the interpreter
ATOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}


def _padding_mask(lengths, S):
    return None if lengths is None else torch.arange(S)[None, :] >= lengths[:, None]  # (B, S) True = pad


def _run(fn, inputs, grad_out, device="cpu"):
    """context and the gradients of fn on leaf copies of inputs on device, returned on the CPU."""
    leaves = [t.detach().to(device).requires_grad_(True) for t in inputs]
    out = fn(*leaves)
    out.backward(grad_out.to(device, out.dtype))
    return out.detach().cpu(), [t.grad.cpu() for t in leaves]


def _assert_close(name, ours, same, ref, dtype):
    err = (ours.double() - ref).abs().max().item()
    bound = 2 * (same.double() - ref).abs().max().item() + ATOL[dtype] * max(1.0, ref.abs().max().item())
    assert err <= bound, f"{name}: max error {err:.3g} > bound {bound:.3g} ({dtype})"


def _assert_matches_math(B, T, S, A, Dk, dtype, lengths):
    """Assert the fused context and its 4 gradients match the math path (float64 ref) -> (out, grads)."""
    torch.manual_seed(T * 100 + S)
    inputs = [torch.randn(B, T, A), torch.randn(B, S, A), torch.randn(A), torch.randn(B, S, Dk)]
    grad_out = torch.randn(B, T, Dk)
    klen = None if lengths is None else torch.tensor(lengths, dtype=torch.int32)
    mask = _padding_mask(klen, S)

    def math(wq, uk, v_weight, values):
        return additive_math(wq, uk, v_weight, values, None if mask is None else mask.to(wq.device))[0]

    ref, ref_g = _run(math, [t.double() for t in inputs], grad_out.double())
    same, same_g = _run(math, [t.to(dtype) for t in inputs], grad_out, DEVICE)
    klen_dev = None if klen is None else klen.to(DEVICE)
    ours, ours_g = _run(lambda *a: additive_attention(*a, klen_dev), [t.to(dtype) for t in inputs], grad_out,
                        DEVICE)
    assert ours.dtype == dtype and ours.shape == (B, T, Dk)
    _assert_close("context", ours, same, ref, dtype)
    for name, a, b, c in zip(("d_wq", "d_uk", "d_v", "d_values"), ours_g, same_g, ref_g):
        assert a.dtype == dtype and a.shape == c.shape
        _assert_close(name, a, b, c, dtype)
    return ours, ours_g


@pytest.mark.parametrize(
    "B,T,S,A,Dk,dtype,lengths",
    [
        (2, 7, 13, 20, 24, torch.float32, [13, 1]),      # odd sizes, padding, A and Dk not powers of 2
        (1, 20, 35, 33, 40, torch.float32, None),        # several T, S and A blocks
        (2, 17, 19, 16, 32, torch.float16, [19, 7]),     # blocks of 16 queries: tl.dot in fp16
        (2, 5, 19, 16, 32, torch.bfloat16, [19, 7]),     # single-query path in bf16
    ],
)
def test_additive_matches_math(B, T, S, A, Dk, dtype, lengths):
    _assert_matches_math(B, T, S, A, Dk, dtype, lengths)


def test_additive_one_query_step_and_empty_source_row():
    """Decoding (T=1, one RNN step); batch 1 has no source keys: zero context and gradients, no NaN."""
    out, grads = _assert_matches_math(2, 1, 29, 33, 16, torch.float32, [29, 0])
    assert torch.all(out[1] == 0)
    assert all(torch.isfinite(g).all() for g in grads)
    assert torch.all(grads[0][1] == 0) and torch.all(grads[1][1] == 0) and torch.all(grads[3][1] == 0)


def test_additive_padding_is_never_read():
    """NaN in the padded keys and values: a kernel that used them would return NaN."""
    B, T, S, A, Dk = 1, 3, 20, 16, 16
    wq, uk, v_weight = torch.randn(B, T, A), torch.randn(B, S, A), torch.randn(A)
    values = torch.randn(B, S, Dk)
    lengths = torch.tensor([11], dtype=torch.int32)
    poisoned_uk, poisoned_values = uk.clone(), values.clone()
    poisoned_uk[:, 11:] = float("nan")
    poisoned_values[:, 11:] = float("nan")
    out = additive_attention(*(t.to(DEVICE) for t in (wq, poisoned_uk, v_weight, poisoned_values, lengths)))
    ref, _ = additive_math(wq, uk, v_weight, values, _padding_mask(lengths, S))
    assert torch.isfinite(out).all() and torch.allclose(out.cpu(), ref, atol=1e-5)


def test_additive_mixed_dtypes_fp16_projections_fp32_v():
    """Under autocast the projections are fp16 while the v parameter stays fp32: accepted, grads per dtype."""
    wq, uk, values = torch.randn(1, 4, 16).half(), torch.randn(1, 9, 16).half(), torch.randn(1, 9, 16).half()
    v_weight = torch.randn(16, device=DEVICE, requires_grad=True)
    out = additive_attention(wq.to(DEVICE), uk.to(DEVICE), v_weight, values.to(DEVICE), None)
    ref, _ = additive_math(wq.double(), uk.double(), v_weight.detach().cpu().double(), values.double())
    assert out.dtype == torch.float16 and (out.cpu().double() - ref).abs().max() < 1e-2
    out.float().sum().backward()
    assert v_weight.grad.dtype == torch.float32 and torch.isfinite(v_weight.grad).all()


def test_additive_rejects_unsupported_inputs():
    wq, uk, values = (torch.randn(*shape, device=DEVICE) for shape in ((1, 2, 8), (1, 3, 8), (1, 3, 4)))
    v_weight = torch.randn(8, device=DEVICE)
    with pytest.raises(AssertionError, match="mismatch"):
        additive_attention(wq, uk, v_weight[:7], values)
    with pytest.raises(AssertionError, match="float64"):
        additive_attention(wq.double(), uk, v_weight, values)
    with pytest.raises(AssertionError, match="key_lengths"):
        additive_attention(wq, uk, v_weight, values, torch.tensor([1, 2], device=DEVICE))
