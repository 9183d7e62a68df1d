"""MultiHeadAttention against torch.nn.MultiheadAttention, on every non-fused backend."""

import pytest
import torch
from torch import nn

from translate.attention import MultiHeadAttention

E, H = 16, 4


def _pair(backend, bias=True):
    ours = MultiHeadAttention(E, H, backend=backend, bias=bias).eval()
    ref = nn.MultiheadAttention(E, H, bias=bias, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
        ref.out_proj.weight.copy_(ours.out_proj.weight)
        if bias:
            ref.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
            ref.out_proj.bias.copy_(ours.out_proj.bias)
    return ours, ref


@pytest.mark.parametrize("backend", ["math", "sdpa"])
def test_self_attention_matches_torch_with_padding_and_causal_mask(backend):
    ours, ref = _pair(backend)
    x = torch.randn(3, 7, E)
    pad = torch.arange(7)[None, :] >= torch.tensor([7, 5, 2])[:, None]  # (B, T)
    causal = torch.ones(7, 7, dtype=torch.bool).triu(1)  # True = masked, PyTorch's convention
    out, weights = ours(x, key_padding_mask=pad, causal=True, need_weights=True)
    ref_out, ref_weights = ref(
        x, x, x, key_padding_mask=pad, attn_mask=causal, need_weights=True, average_attn_weights=False
    )
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(weights, ref_weights, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("backend", ["math", "sdpa"])
def test_cross_attention_matches_torch_with_padding(backend):
    ours, ref = _pair(backend, bias=False)
    x, memory = torch.randn(2, 5, E), torch.randn(2, 9, E)
    pad = torch.arange(9)[None, :] >= torch.tensor([9, 4])[:, None]  # (B, S)
    out, weights = ours(x, memory, key_padding_mask=pad)
    ref_out, _ = ref(x, memory, memory, key_padding_mask=pad)
    assert weights is None
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-4)


def test_backends_agree_on_parameter_gradients():
    math_mha = MultiHeadAttention(E, H, backend="math")
    sdpa_mha = MultiHeadAttention(E, H, backend="sdpa")
    sdpa_mha.load_state_dict(math_mha.state_dict())
    x, memory = torch.randn(2, 6, E), torch.randn(2, 5, E)
    pad = torch.tensor([[False] * 5, [False, False, False, True, True]])
    for module in (math_mha, sdpa_mha):
        module(x, memory, key_padding_mask=pad)[0].square().sum().backward()
    for (name, p_math), p_sdpa in zip(math_mha.named_parameters(), sdpa_mha.parameters()):
        torch.testing.assert_close(p_sdpa.grad, p_math.grad, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("backend", ["math", "sdpa"])
def test_window_restricts_weights_to_the_band(backend):
    mha = MultiHeadAttention(E, H, backend=backend, window=1).eval()
    x = torch.randn(2, 6, E)
    _, weights = mha(x, need_weights=True)
    band = (torch.arange(6)[:, None] - torch.arange(6)[None, :]).abs() <= 1  # (T, S)
    assert torch.equal(weights[0, 0] > 0, band)
    out_math = MultiHeadAttention(E, H, backend="math", window=1).eval()
    out_math.load_state_dict(mha.state_dict())
    torch.testing.assert_close(mha(x)[0], out_math(x)[0], atol=1e-5, rtol=1e-4)


def test_dropout_only_in_training():
    mha = MultiHeadAttention(E, H, dropout=0.5, backend="sdpa")
    x = torch.randn(2, 6, E)
    mha.eval()
    torch.testing.assert_close(mha(x)[0], mha(x)[0])
    mha.train()
    assert not torch.allclose(mha(x)[0], mha(x)[0])


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="backend"):
        MultiHeadAttention(E, H, backend="flash")
    with pytest.raises(ValueError, match="window"):
        MultiHeadAttention(E, H, window=-2)


@pytest.mark.parametrize("cross", [False, True])
def test_training_projects_qkv_together_with_the_same_outputs_and_gradients(cross):
    """In training q, k, v come from one matmul over the stacked weights: the same as eval's three."""
    mha = MultiHeadAttention(E, H, backend="math")
    x, memory = torch.randn(2, 5, E), (torch.randn(2, 7, E) if cross else None)
    results = []
    for train in (True, False):
        mha.train(train)
        mha.zero_grad()
        out = mha(x, memory, causal=not cross)[0]
        out.square().sum().backward()
        results.append((out.detach(), [p.grad.clone() for p in mha.parameters()]))
    (out_t, grads_t), (out_e, grads_e) = results
    torch.testing.assert_close(out_t, out_e, atol=1e-5, rtol=1e-4)
    for name_grad, g_t, g_e in zip(mha.named_parameters(), grads_t, grads_e):
        torch.testing.assert_close(g_t, g_e, atol=1e-5, rtol=1e-4, msg=name_grad[0])
