"""Backend choice and dispatch: every backend against math, outputs and gradients; the fallbacks."""

import importlib.util
import logging
import subprocess
import sys

import pytest
import torch

from translate.attention import backend as backend_module
from translate.attention.backend import additive_attention, resolve_backend, scaled_dot_product
from translate.attention.functional import scaled_dot_product_math
from translate.attention.masks import attention_mask

# (B, H, T, S, D, padded lengths or None, causal, window): padding, causal, odd lengths, one-token queries.
CASES = [
    (2, 2, 5, 7, 8, [7, 3], False, None),
    (3, 1, 7, 7, 16, [7, 5, 1], True, None),
    (2, 3, 6, 6, 8, None, True, None),
    (2, 2, 1, 9, 8, [9, 4], True, None),
    (1, 2, 1, 1, 4, None, True, None),
    (2, 2, 11, 13, 8, [13, 6], False, 2),
    (2, 2, 9, 9, 8, [9, 9], True, 3),
    (2, 2, 3, 5, 8, None, False, None),
]


def _inputs(b, h, t, s, d, lengths, dtype=torch.float32):
    q, k, v = (torch.randn(b, h, n, d, dtype=dtype, requires_grad=True) for n in (t, s, s))
    mask = None if lengths is None else torch.arange(s)[None, :] >= torch.tensor(lengths)[:, None]
    return q, k, v, mask


def _run(q, k, v, mask, causal, window, backend):
    out, _ = scaled_dot_product(q, k, v, key_padding_mask=mask, causal=causal, window=window, backend=backend)
    grads = torch.autograd.grad(out.square().sum(), (q, k, v))
    return out, grads


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("backend", ["sdpa", "auto"])
def test_backend_matches_math(case, backend):
    *shape, causal, window = case
    q, k, v, mask = _inputs(*shape)
    out, grads = _run(q, k, v, mask, causal, window, backend)
    ref_out, ref_grads = _run(q, k, v, mask, causal, window, "math")
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-4)
    for grad, ref in zip(grads, ref_grads):
        torch.testing.assert_close(grad, ref, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("backend", ["math", "sdpa"])
def test_all_masked_rows_are_zero_without_nan(backend):
    q, k, v, _ = _inputs(3, 2, 4, 3, 8, None)
    mask = torch.tensor([[False, False, True], [True, True, True], [False, True, True]])
    # T > S with a window: the first query rows of batch 2 see no key either.
    out, grads = _run(q, k, v, mask, True, 0, backend)
    assert torch.isfinite(out).all() and all(torch.isfinite(g).all() for g in grads)
    assert (out[1] == 0).all() and (grads[0][1] == 0).all()
    ref_out, _ = _run(q, k, v, mask, True, 0, "math")
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-4)


def test_need_weights_returns_math_weights_on_every_backend():
    q, k, v, mask = _inputs(2, 2, 3, 5, 8, [5, 2])
    _, ref = scaled_dot_product_math(q, k, v, mask)
    for backend in ("math", "sdpa", "auto"):
        out, weights = scaled_dot_product(q, k, v, key_padding_mask=mask, backend=backend, need_weights=True)
        torch.testing.assert_close(weights, ref)
        assert scaled_dot_product(q, k, v, backend=backend)[1] is None


def test_sdpa_dropout_is_applied_and_zero_dropout_is_deterministic():
    q, k, v, _ = _inputs(2, 2, 6, 6, 8, None)
    plain = scaled_dot_product(q, k, v, backend="sdpa")[0]
    dropped = scaled_dot_product(q, k, v, backend="sdpa", dropout_p=0.5)[0]
    assert not torch.allclose(plain, dropped)
    torch.testing.assert_close(scaled_dot_product(q, k, v, backend="sdpa")[0], plain)


def test_resolve_backend_choices_and_reasons(monkeypatch):
    monkeypatch.setattr(backend_module, "_announced", set())
    assert resolve_backend("auto", "cpu") == "sdpa"
    assert resolve_backend("math", "cpu") == "math"
    assert resolve_backend("sdpa", "cpu", need_weights=True) == "math"
    assert resolve_backend("auto", "cpu", form="additive") == "math"
    # Without the interpreter a CPU call never reaches the kernel (and never imports triton).
    monkeypatch.setattr(backend_module, "triton_importable", lambda: True)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert resolve_backend("triton", "cpu") == "sdpa"
    assert resolve_backend("triton", "cpu", form="additive") == "math"
    with pytest.raises(ValueError, match="math\\|sdpa\\|triton\\|auto"):
        resolve_backend("flash", "cpu")


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_resolve_backend_triton_limits(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert resolve_backend("triton", "cpu", head_dim=16, value_dim=16) == "triton"
    assert resolve_backend("triton", "cpu", dropout_p=0.1) == "sdpa"
    assert resolve_backend("triton", "cpu", right_padded=False) == "sdpa"
    assert resolve_backend("triton", "cpu", head_dim=8) == "sdpa"
    assert resolve_backend("triton", "cpu", head_dim=16, value_dim=32) == "sdpa"
    assert resolve_backend("triton", "cpu", dtype=torch.float64) == "sdpa"
    assert resolve_backend("triton", "cpu", need_weights=True) == "math"
    assert resolve_backend("auto", "cuda") == "triton"
    monkeypatch.setattr(backend_module, "triton_importable", lambda: False)
    assert resolve_backend("auto", "cuda") == "sdpa"
    assert resolve_backend("triton", "cuda") == "sdpa"


def test_choice_logged_once_per_pair(monkeypatch, caplog):
    monkeypatch.setattr(backend_module, "_announced", set())
    with caplog.at_level(logging.INFO, logger="translate.attention.backend"):
        for _ in range(3):
            resolve_backend("auto", "cpu")
        resolve_backend("auto", "cpu", need_weights=True)
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("attention backend: requested auto -> sdpa (cpu)") == 1
    assert len(messages) == 2 and "requested auto -> math (need_weights" in messages[1]


def test_cpu_default_path_never_imports_triton():
    code = (
        "import sys, torch\n"
        "from translate.attention import scaled_dot_product, MultiHeadAttention\n"
        "q = torch.randn(1, 1, 2, 4)\n"
        "scaled_dot_product(q, q, q, causal=True)\n"
        "MultiHeadAttention(8, 2)(torch.randn(1, 3, 8))\n"
        "assert 'triton' not in sys.modules, 'triton imported'\n"
    )
    env = {"PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[2]), "PATH": ""}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_triton_backend_routes_to_kernel_and_matches_math(monkeypatch):
    if not torch.cuda.is_available():
        monkeypatch.setenv("TRITON_INTERPRET", "1")  # conftest set it before triton was imported
    from translate.attention import triton_flash

    calls = []
    kernel = triton_flash.flash_attention

    def spy(q, k, v, key_lengths, causal, window, scale):
        calls.append((None if key_lengths is None else key_lengths.tolist(), causal, window))
        return kernel(q, k, v, key_lengths, causal, window, scale)

    monkeypatch.setattr(triton_flash, "flash_attention", spy)
    q, k, v, mask = _inputs(2, 2, 5, 7, 16, [7, 3])
    out, grads = _run(q, k, v, mask, True, 2, "triton")
    ref_out, ref_grads = _run(q, k, v, mask, True, 2, "math")
    assert calls == [([7, 3], True, 2)]
    torch.testing.assert_close(out, ref_out, atol=1e-4, rtol=1e-3)
    for grad, ref in zip(grads, ref_grads):
        torch.testing.assert_close(grad, ref, atol=1e-4, rtol=1e-3)
    # A mask that is not right-padded cannot become lengths: sdpa serves it, the kernel is not called.
    left_padded = mask.flip(-1)
    out, _ = _run(q, k, v, left_padded, False, None, "triton")
    assert len(calls) == 1
    torch.testing.assert_close(out, _run(q, k, v, left_padded, False, None, "math")[0], atol=1e-5, rtol=1e-4)


def test_additive_dispatch_matches_math_on_non_fused_backends():
    wq, uk = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    v_weight, values = torch.randn(4), torch.randn(2, 5, 6)
    mask = torch.tensor([[False] * 5, [False, False, True, True, True]])
    args = (wq, uk, v_weight, values)
    ref, ref_w = additive_attention(*args, key_padding_mask=mask, backend="math", need_weights=True)
    for backend in ("sdpa", "auto"):
        context, weights = additive_attention(*args, key_padding_mask=mask, backend=backend)
        torch.testing.assert_close(context, ref)
        assert weights is None
    assert ref_w.shape == (2, 3, 5) and (ref_w[1, :, 2:] == 0).all()


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_triton_backend_routes_additive_to_kernel_and_matches_math(monkeypatch):
    if not torch.cuda.is_available():
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    from translate.attention import triton_additive

    calls = []
    kernel = triton_additive.additive_attention

    def spy(wq, uk, v_weight, values, key_lengths):
        calls.append(None if key_lengths is None else key_lengths.tolist())
        return kernel(wq, uk, v_weight, values, key_lengths)

    monkeypatch.setattr(triton_additive, "additive_attention", spy)
    args = [torch.randn(*shape, requires_grad=True) for shape in ((2, 3, 8), (2, 5, 8), (8,), (2, 5, 6))]
    mask = torch.tensor([[False] * 5, [False, False, True, True, True]])
    results = []
    for backend in ("triton", "math"):
        context, _ = additive_attention(*args, key_padding_mask=mask, backend=backend)
        results.append((context, torch.autograd.grad(context.square().sum(), args)))
    assert calls == [[5, 2]]
    torch.testing.assert_close(results[0][0], results[1][0], atol=1e-4, rtol=1e-3)
    for grad, ref in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(grad, ref, atol=1e-4, rtol=1e-3)
    # need_weights: only math has them, the kernel is not called.
    _, weights = additive_attention(*args, key_padding_mask=mask, backend="triton", need_weights=True)
    assert weights.shape == (2, 3, 5) and len(calls) == 1


def test_a_measured_verdict_is_pinned_only_where_it_holds():
    """apply_verdict: the same machine and fp32 pin the verdict on every "auto" module; anything else leaves
    them per call, and says why."""
    from translate.attention import MultiHeadAttention
    from translate.attention.backend import apply_verdict, machine_id

    def model():
        auto, fixed = MultiHeadAttention(8, 2, backend="auto"), MultiHeadAttention(8, 2, backend="sdpa")
        return torch.nn.ModuleList([auto, fixed])

    here = {"backend": "math", "machine": machine_id(), "precision": "fp32"}
    m = model()
    assert apply_verdict(m, here, "cpu").startswith("math, measured")
    assert [a.backend for a in m] == ["math", "sdpa"]  # only the "auto" one is pinned
    wrong = [(None, "no measured verdict"), ({**here, "machine": "another CPU"}, "another machine"),
             ({**here, "precision": "bf16"}, "measured in bf16"), ({**here, "backend": "x"}, "unknown")]
    for verdict, why in wrong:
        m = model()
        assert why in apply_verdict(m, verdict, "cpu") and m[0].backend == "auto"
    m = model()
    assert "cuda" in apply_verdict(m, here, "cuda") and m[0].backend == "auto"


def _grads_of(out, inputs):
    return torch.autograd.grad(out.float().square().sum(), inputs)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_math_under_autograd_runs_the_biased_form_within_the_references_own_error(case, dtype, monkeypatch):
    """Training runs scaled_dot_product_biased (one additive bias, one baddbmm): against the float64 reference
    its output and gradients are within twice the error of the reference run at the same dtype."""
    *shape, causal, window = case
    q, k, v, mask = _inputs(*shape, dtype=torch.float64)
    ref_out = scaled_dot_product_math(q, k, v, mask, causal, window)[0]
    ref_grads = _grads_of(ref_out, (q, k, v))
    low = [t.detach().to(dtype).requires_grad_(True) for t in (q, k, v)]
    same_dtype = scaled_dot_product_math(*low, mask, causal, window)[0]
    same_grads = _grads_of(same_dtype, low)
    calls = []
    real = backend_module.scaled_dot_product_biased
    monkeypatch.setattr(backend_module, "scaled_dot_product_biased", lambda *a: calls.append(1) or real(*a))
    out = scaled_dot_product(*low, key_padding_mask=mask, causal=causal, window=window, backend="math")[0]
    grads = _grads_of(out, low)
    allowed = attention_mask(shape[2], shape[3], mask, causal and shape[2] > 1, window)
    serves = allowed is None or bool(allowed.any(-1).all())  # a row that sees no key goes to the reference
    assert calls == ([1] if serves else []) and out.dtype == dtype
    atol = 1e-5 if dtype == torch.float32 else 1e-2
    for got, own, ref in zip((out, *grads), (same_dtype, *same_grads), (ref_out, *ref_grads)):
        own_error = (own.double() - ref).abs().max()
        assert (got.double() - ref).abs().max() <= 2 * own_error + atol * max(1.0, ref.abs().max())


def test_math_without_autograd_or_with_an_empty_row_runs_the_reference(monkeypatch):
    calls = []
    real = backend_module.scaled_dot_product_biased
    monkeypatch.setattr(backend_module, "scaled_dot_product_biased", lambda *a: calls.append(1) or real(*a))
    q, k, v, mask = _inputs(2, 2, 3, 4, 8, [4, 2])
    with torch.no_grad():
        scaled_dot_product(q, k, v, key_padding_mask=mask, backend="math")
    scaled_dot_product(q, k, v, key_padding_mask=mask, backend="math", need_weights=True)
    empty = torch.tensor([[False] * 4, [True] * 4])  # sentence 1 has no key: the reference zeroes it
    out = scaled_dot_product(q, k, v, key_padding_mask=empty, backend="math")[0]
    assert calls == [] and (out[1] == 0).all() and torch.isfinite(out).all()
    scaled_dot_product(q, k, v, key_padding_mask=mask, backend="math")
    assert calls == [1]
