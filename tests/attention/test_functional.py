"""The math reference: mask semantics, NaN-free empty rows, and float64 gradcheck."""

import math

import pytest
import torch

from translate.attention.functional import (
    additive_math,
    attention_bias,
    masked_softmax,
    scaled_dot_product_biased,
    scaled_dot_product_math,
)
from translate.attention.masks import attention_mask, lengths_from_padding_mask


def _qkv(b=2, h=2, t=4, s=6, d=8, dtype=torch.float64, grad=False):
    return tuple(torch.randn(b, h, n, d, dtype=dtype, requires_grad=grad) for n in (t, s, s))


def _expected_allowed(t, s, causal, window):
    """Loop version of the mask rules: query i sits at position i + s - t."""
    allowed = torch.ones(t, s, dtype=torch.bool)
    for i in range(t):
        p = i + s - t
        for j in range(s):
            if causal and j > p:
                allowed[i, j] = False
            if window is not None and abs(j - p) > window:
                allowed[i, j] = False
    return allowed


def test_matches_explicit_formula():
    q, k, v = _qkv()
    out, weights = scaled_dot_product_math(q, k, v)
    scores = torch.einsum("bhtd,bhsd->bhts", q, k) / math.sqrt(q.shape[-1])
    expected_w = torch.exp(scores) / torch.exp(scores).sum(-1, keepdim=True)
    torch.testing.assert_close(weights, expected_w)
    torch.testing.assert_close(out, torch.einsum("bhts,bhsd->bhtd", expected_w, v))


@pytest.mark.parametrize("t,s", [(4, 6), (6, 6), (1, 5), (5, 3)])
@pytest.mark.parametrize("causal,window", [(True, None), (False, 1), (True, 2), (False, 0)])
def test_causal_and_window_semantics(t, s, causal, window):
    q, k, v = _qkv(t=t, s=s)
    _, weights = scaled_dot_product_math(q, k, v, causal=causal, window=window)
    expected = _expected_allowed(t, s, causal, window)
    assert torch.equal(weights[0, 0] > 0, expected)
    rows = expected.any(-1)
    torch.testing.assert_close(weights[..., rows, :].sum(-1), torch.ones_like(weights[..., rows, 0]))


def test_one_token_query_causal_sees_every_key():
    q, k, v = _qkv(t=1, s=7)
    out_causal, _ = scaled_dot_product_math(q, k, v, causal=True)
    out_plain, _ = scaled_dot_product_math(q, k, v)
    torch.testing.assert_close(out_causal, out_plain)


def test_padding_weights_zero_and_all_masked_rows_are_zero_without_nan():
    q, k, v = _qkv(b=3, grad=True)
    mask = torch.zeros(3, 6, dtype=torch.bool)
    mask[0, 4:] = True
    mask[1, :] = True  # nothing to attend to
    out, weights = scaled_dot_product_math(q, k, v, key_padding_mask=mask, causal=True, window=1)
    assert not torch.isnan(out).any() and not torch.isnan(weights).any()
    assert (weights[0, ..., 4:] == 0).all()
    assert (out[1] == 0).all() and (weights[1] == 0).all()
    out.square().sum().backward()
    for grad in (q.grad, k.grad, v.grad):
        assert torch.isfinite(grad).all()
    assert (q.grad[1] == 0).all()


def test_masked_softmax_keeps_float64_and_upcasts_half():
    scores = torch.randn(2, 3, dtype=torch.float64)
    assert masked_softmax(scores, None).dtype == torch.float64
    assert masked_softmax(scores.half(), None).dtype == torch.float32


def test_dropout_one_zeroes_output_but_not_returned_weights():
    q, k, v = _qkv()
    out, weights = scaled_dot_product_math(q, k, v, dropout_p=1.0)
    assert (out == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones_like(weights[..., 0]))


def test_gradcheck_scaled_dot_product_with_padding_causal_window():
    q, k, v = _qkv(b=2, h=1, t=3, s=5, d=4, grad=True)
    mask = torch.tensor([[False, False, False, True, True], [True] * 5])
    for causal, window in [(False, None), (True, None), (False, 1), (True, 1)]:
        fn = lambda a, b, c, causal=causal, window=window: scaled_dot_product_math(
            a, b, c, mask, causal, window
        )[0]
        assert torch.autograd.gradcheck(fn, (q, k, v), fast_mode=True)


def test_gradcheck_additive_with_padding():
    wq = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    uk = torch.randn(2, 5, 4, dtype=torch.float64, requires_grad=True)
    v_weight = torch.randn(4, dtype=torch.float64, requires_grad=True)
    values = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[False, False, True, True, True], [True] * 5])
    fn = lambda *args: additive_math(*args, key_padding_mask=mask)[0]
    assert torch.autograd.gradcheck(fn, (wq, uk, v_weight, values), fast_mode=True)


def test_additive_matches_explicit_formula():
    wq, uk = torch.randn(2, 3, 4, dtype=torch.float64), torch.randn(2, 5, 4, dtype=torch.float64)
    v_weight, values = torch.randn(4, dtype=torch.float64), torch.randn(2, 5, 3, dtype=torch.float64)
    mask = torch.tensor([[False] * 4 + [True], [False] * 5])
    context, weights = additive_math(wq, uk, v_weight, values, mask)
    b, t = 0, 2
    scores = torch.stack([v_weight @ torch.tanh(wq[b, t] + uk[b, s]) for s in range(4)])
    w = torch.softmax(scores, 0)
    torch.testing.assert_close(weights[b, t], torch.cat([w, w.new_zeros(1)]))
    torch.testing.assert_close(context[b, t], w @ values[b, :4])


def test_lengths_from_padding_mask():
    right = torch.tensor([[False, False, True], [False, False, False], [True, True, True]])
    assert lengths_from_padding_mask(right).tolist() == [2, 3, 0]
    assert lengths_from_padding_mask(right).dtype == torch.int32
    assert lengths_from_padding_mask(torch.tensor([[True, False, False]])) is None


def test_attention_mask_none_when_nothing_masked_and_bad_inputs_rejected():
    assert attention_mask(3, 4) is None
    q, k, v = _qkv()
    with pytest.raises(TypeError, match="bool"):
        scaled_dot_product_math(q, k, v, key_padding_mask=torch.zeros(2, 6))
    with pytest.raises(ValueError, match=r"\(B, S\)"):
        scaled_dot_product_math(q, k, v, key_padding_mask=torch.zeros(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="window"):
        scaled_dot_product_math(q, k, v, window=-1)


def test_gradcheck_biased_form_with_padding_causal_window():
    q, k, v = _qkv(b=2, h=2, t=3, s=5, d=4, grad=True)
    mask = torch.tensor([[False, False, False, True, True], [False, False, False, False, True]])
    for causal, window in [(False, None), (True, None), (True, 2)]:  # every query row sees a key
        bias = attention_bias(attention_mask(3, 5, mask, causal, window), torch.float64)
        expected = scaled_dot_product_math(q, k, v, mask, causal, window)[0]
        torch.testing.assert_close(scaled_dot_product_biased(q, k, v, bias), expected)
        fn = lambda a, b, c, bias=bias: scaled_dot_product_biased(a, b, c, bias)
        assert torch.autograd.gradcheck(fn, (q, k, v), fast_mode=True)
