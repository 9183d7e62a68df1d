"""LuongAttention: dot, general, concat scores against their formulas; backends agree."""

import pytest
import torch

from translate.attention import LuongAttention


def _inputs(b=2, t=3, s=5, dq=4, dk=4):
    query, keys = torch.randn(b, t, dq), torch.randn(b, s, dk)
    mask = torch.arange(s)[None, :] >= torch.tensor([s, 3])[:, None]
    return query, keys, mask


def _expected(scores, keys, mask):
    weights = torch.softmax(scores.masked_fill(mask[:, None, :], float("-inf")), -1)
    return weights @ keys, weights


def test_dot_is_unscaled_dot_product():
    query, keys, mask = _inputs()
    attn = LuongAttention(4, 4, "dot", backend="math")
    context, weights = attn(query, keys, key_padding_mask=mask, need_weights=True)
    ref_context, ref_weights = _expected(query @ keys.transpose(1, 2), keys, mask)
    torch.testing.assert_close(weights, ref_weights)
    torch.testing.assert_close(context, ref_context)
    assert attn.project_keys(keys) is None


def test_general_uses_bilinear_score():
    query, keys, mask = _inputs(dq=6)
    attn = LuongAttention(6, 4, "general", backend="math")
    context, weights = attn(query, keys, key_padding_mask=mask, need_weights=True)
    scores = query @ attn.key_proj.weight @ keys.transpose(1, 2)  # h_t^T W_a h_s
    ref_context, ref_weights = _expected(scores, keys, mask)
    torch.testing.assert_close(weights, ref_weights)
    torch.testing.assert_close(context, ref_context)
    assert attn.project_keys(keys).shape == (2, 5, 6)


def test_concat_uses_additive_score():
    query, keys, mask = _inputs(dq=6)
    attn = LuongAttention(6, 4, "concat", backend="math", attn_dim=5)
    context, weights = attn(query, keys, key_padding_mask=mask, need_weights=True)
    hidden = torch.tanh(attn.query_proj(query)[:, :, None] + attn.key_proj(keys)[:, None])  # (B,T,S,A)
    ref_context, ref_weights = _expected(hidden @ attn.v, keys, mask)
    torch.testing.assert_close(weights, ref_weights)
    torch.testing.assert_close(context, ref_context)


@pytest.mark.parametrize("score", ["dot", "general", "concat"])
def test_sdpa_matches_math_with_gradients_and_one_step_queries(score):
    query, keys, mask = _inputs(dq=4)
    ref = LuongAttention(4, 4, score, backend="math")
    fast = LuongAttention(4, 4, score, backend="sdpa")
    fast.load_state_dict(ref.state_dict())
    query.requires_grad_(True)
    outs = [m(query, keys, key_padding_mask=mask)[0] for m in (ref, fast)]
    torch.testing.assert_close(outs[1], outs[0], atol=1e-5, rtol=1e-4)
    grads = [torch.autograd.grad(o.square().sum(), query)[0] for o in outs]
    torch.testing.assert_close(grads[1], grads[0], atol=1e-5, rtol=1e-4)
    step, weights = fast(query[:, 1], keys, key_padding_mask=mask, projected=fast.project_keys(keys))
    torch.testing.assert_close(step, outs[0][:, 1], atol=1e-5, rtol=1e-4)
    assert weights is None


def test_bad_arguments_rejected():
    with pytest.raises(ValueError, match="query_dim == key_dim"):
        LuongAttention(4, 6, "dot")
    with pytest.raises(ValueError, match="dot\\|general\\|concat"):
        LuongAttention(4, 4, "location")
