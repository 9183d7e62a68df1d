"""Our Transformer layers (the core's MultiHeadAttention inside) against PyTorch's, with copied weights."""

import pytest
import torch
from torch import nn

from translate.models.transformer_layers import DecoderLayer, EncoderLayer

E, H, F = 16, 4, 32


pytestmark = pytest.mark.usefixtures("one_thread")


def copy_attention(ours, theirs: nn.MultiheadAttention) -> None:
    q, k, v = theirs.in_proj_weight.chunk(3)
    qb, kb, vb = theirs.in_proj_bias.chunk(3)
    with torch.no_grad():
        for proj, w, b in ((ours.q_proj, q, qb), (ours.k_proj, k, kb), (ours.v_proj, v, vb)):
            proj.weight.copy_(w)
            proj.bias.copy_(b)
        ours.out_proj.weight.copy_(theirs.out_proj.weight)
        ours.out_proj.bias.copy_(theirs.out_proj.bias)


def copy_common(ours, theirs, norms: int) -> None:
    with torch.no_grad():
        for name in ("linear1", "linear2"):
            getattr(ours.ffn, name).weight.copy_(getattr(theirs, name).weight)
            getattr(ours.ffn, name).bias.copy_(getattr(theirs, name).bias)
        for i in range(1, norms + 1):
            getattr(ours, f"norm{i}").load_state_dict(getattr(theirs, f"norm{i}").state_dict())
    copy_attention(ours.self_attn, theirs.self_attn)


def randomize_norms(module: nn.Module) -> None:
    """LayerNorms start at (1, 0): perturb them so a swapped norm would show."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)


@pytest.mark.parametrize("backend", ["math", "sdpa"])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_matches_torch(norm_first, backend, activation):
    theirs = nn.TransformerEncoderLayer(
        E, H, F, dropout=0.0, activation=activation, batch_first=True, norm_first=norm_first
    )
    randomize_norms(theirs)
    ours = EncoderLayer(E, H, F, 0.0, 0.0, activation, norm_first, backend)
    copy_common(ours, theirs, norms=2)
    x = torch.randn(3, 7, E)
    pad = torch.zeros(3, 7, dtype=torch.bool)
    pad[1, 4:] = True
    pad[2, 6:] = True
    # train() with dropout 0 keeps PyTorch off its eval fast path, which zeroes padded positions.
    expected = theirs.train()(x, src_key_padding_mask=pad)
    got = ours.train()(x, pad)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("backend", ["math", "sdpa"])
@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_torch(norm_first, backend):
    theirs = nn.TransformerDecoderLayer(E, H, F, dropout=0.0, batch_first=True, norm_first=norm_first)
    randomize_norms(theirs)
    ours = DecoderLayer(E, H, F, 0.0, 0.0, "relu", norm_first, backend)
    copy_common(ours, theirs, norms=3)
    copy_attention(ours.cross_attn, theirs.multihead_attn)
    x, memory = torch.randn(3, 5, E), torch.randn(3, 7, E)
    pad = torch.zeros(3, 7, dtype=torch.bool)
    pad[0, 2:] = True
    causal = nn.Transformer.generate_square_subsequent_mask(5)
    expected = theirs(x, memory, tgt_mask=causal, tgt_is_causal=True, memory_key_padding_mask=pad)
    got, weights = ours(x, memory, pad, need_weights=True)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert weights.shape == (3, H, 5, 7) and weights[0, :, :, 2:].abs().max() == 0


def test_cross_attention_weights_match_torch_multihead_attention():
    """The head-averaged cross-attention map equals nn.MultiheadAttention's with the same weights."""
    theirs = nn.MultiheadAttention(E, H, batch_first=True)
    ours = DecoderLayer(E, H, F, 0.0, 0.0, "relu", False, "math").cross_attn
    copy_attention(ours, theirs)
    q, mem = torch.randn(2, 4, E), torch.randn(2, 6, E)
    pad = torch.tensor([[False] * 6, [False] * 3 + [True] * 3])
    out_t, w_t = theirs(q, mem, mem, key_padding_mask=pad, need_weights=True, average_attn_weights=False)
    out_o, w_o = ours(q, mem, key_padding_mask=pad, need_weights=True)
    torch.testing.assert_close(out_o, out_t, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w_o, w_t, atol=1e-6, rtol=1e-5)
