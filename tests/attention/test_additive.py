"""AdditiveAttention (Bahdanau): the score formula, keys projected once per source, masks, shapes."""

import pytest
import torch

from translate.attention import AdditiveAttention


def _setup(b=2, t=3, s=5, dq=6, dk=4, a=8):
    attn = AdditiveAttention(dq, dk, a, backend="math")
    query, keys = torch.randn(b, t, dq), torch.randn(b, s, dk)
    mask = torch.arange(s)[None, :] >= torch.tensor([s, 2])[:, None]
    return attn, query, keys, mask


def test_matches_bahdanau_formula():
    attn, query, keys, mask = _setup()
    context, weights = attn(query, keys, key_padding_mask=mask, need_weights=True)
    b, t = 1, 2
    w_s = attn.query_proj.weight @ query[b, t]
    scores = torch.stack([attn.v @ torch.tanh(w_s + attn.key_proj(keys[b, j])) for j in range(2)])
    expected = torch.softmax(scores, 0)
    torch.testing.assert_close(weights[b, t, :2], expected)
    assert (weights[b, :, 2:] == 0).all()
    torch.testing.assert_close(context[b, t], expected @ keys[b, :2])


def test_projected_keys_are_not_projected_again():
    attn, query, keys, mask = _setup()
    calls = []
    attn.key_proj.register_forward_hook(lambda *_: calls.append(1))
    uk = attn.project_keys(keys)
    assert uk.shape == (2, 5, 8) and len(calls) == 1
    steps = [attn(query[:, t], keys, key_padding_mask=mask, projected=uk)[0] for t in range(3)]
    assert len(calls) == 1
    full, _ = attn(query, keys, key_padding_mask=mask)
    torch.testing.assert_close(torch.stack(steps, dim=1), full)


def test_one_step_query_shapes():
    attn, query, keys, mask = _setup()
    context, weights = attn(query[:, 0], keys, key_padding_mask=mask, need_weights=True)
    assert context.shape == (2, 4) and weights.shape == (2, 5)
    assert attn(query[:, 0], keys)[1] is None


def test_fully_masked_row_gives_zeros_and_finite_gradients():
    attn, query, keys, _ = _setup()
    keys.requires_grad_(True)
    mask = torch.tensor([[False] * 5, [True] * 5])
    context, _ = attn(query, keys, key_padding_mask=mask)
    assert (context[1] == 0).all()
    context.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in attn.parameters()) and torch.isfinite(keys.grad).all()


@pytest.mark.parametrize("backend", ["sdpa", "auto"])
def test_other_backends_match_math(backend):
    attn, query, keys, mask = _setup()
    other = AdditiveAttention(6, 4, 8, backend=backend)
    other.load_state_dict(attn.state_dict())
    torch.testing.assert_close(
        other(query, keys, key_padding_mask=mask)[0], attn(query, keys, key_padding_mask=mask)[0]
    )


def test_bad_backend_rejected():
    with pytest.raises(ValueError, match="backend"):
        AdditiveAttention(4, 4, 4, backend="cuda")
