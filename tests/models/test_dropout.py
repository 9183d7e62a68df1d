"""translate/models/dropout.py against torch's dropout: the same values and gradients through a mask, the same
drop rate, torch's generator (seeded, resumable)."""

import pytest
import torch
from torch import nn

from translate.models.dropout import Dropout, dropout, dropout_reference, scaled_keep_mask
from translate.models.transformer import Transformer


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_values_and_gradients_are_torch_dropouts_through_the_same_mask(p):
    torch.manual_seed(0)
    x = torch.randn(6, 7, 33, dtype=torch.float64).requires_grad_()  # odd size: the last int64 half unused
    out = dropout(x, p)
    keep = out.detach() != 0  # randn has no zeros
    expected = x.detach() * keep / (1 - p)  # F.dropout's definition: zeroed or scaled by 1 / (1 - p)
    torch.testing.assert_close(out.detach(), expected, rtol=1e-15, atol=0)
    grad = torch.randn_like(x)
    out.backward(grad)
    torch.testing.assert_close(x.grad, grad * keep / (1 - p), rtol=1e-15, atol=0)
    # torch's own dropout gives the same kind of numbers: every element zero or x / (1 - p)
    ref = dropout_reference(x.detach(), p)
    assert torch.all((ref == 0) | torch.isclose(ref, x.detach() / (1 - p)))


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_the_drop_rate_is_p_at_even_and_odd_positions_like_torchs(p):
    torch.manual_seed(1)
    n = 1 << 20
    mask = scaled_keep_mask(torch.Size([n]), p, torch.float32, torch.device("cpu"))
    assert mask.unique().tolist() == [0.0, pytest.approx(1 / (1 - p))]
    sigma = (p * (1 - p) / (n // 2)) ** 0.5
    dropped = mask == 0
    for half in (dropped[0::2], dropped[1::2]):  # the low and the high 32 bits of each int64 draw
        assert abs(half.double().mean().item() - p) < 5 * sigma
    ref = dropout_reference(torch.ones(n), p) == 0
    assert abs(ref.double().mean().item() - dropped.double().mean().item()) < 10 * sigma
    # neighbours are independent: P(both dropped) = p^2
    both = (dropped[0::2] & dropped[1::2]).double().mean().item()
    assert abs(both - p * p) < 5 * (p * p * (1 - p * p) / (n // 2)) ** 0.5


def test_the_mask_comes_from_torchs_generator():
    x = torch.randn(4, 50)
    torch.manual_seed(3)
    a, b = dropout(x, 0.2), dropout(x, 0.2)
    torch.manual_seed(3)
    assert torch.equal(dropout(x, 0.2), a) and not torch.equal(a, b)  # seeded, and each call draws anew
    state = torch.get_rng_state()
    c = dropout(x, 0.2)
    torch.set_rng_state(state)
    assert torch.equal(dropout(x, 0.2), c)  # a restored RNG state (resume) gives the same mask


def test_eval_zero_one_and_low_precision():
    x = torch.randn(3, 8)
    assert dropout(x, 0.3, training=False) is x and dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))  # torch's answer for p = 1
    with pytest.raises(ValueError, match="probability"):
        dropout(x, 1.5)
    half = dropout(x.bfloat16(), 0.5)
    assert half.dtype == torch.bfloat16 and torch.all((half == 0) | (half == (x.bfloat16() * 2)))


def test_the_transformer_uses_it_and_its_checkpoint_keys_are_unchanged():
    model = Transformer(40, 40, True, d_model=16, ffn_dim=32, num_heads=2, encoder_layers=1, decoder_layers=1)
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert drops and all(isinstance(m, Dropout) for m in drops)
    assert not any("dropout" in k for k in model.state_dict())  # no parameters, no buffers
    model.train()
    src, tgt = torch.randint(4, 40, (2, 5)), torch.randint(4, 40, (2, 6))
    torch.manual_seed(0)
    a = model(src, tgt)
    torch.manual_seed(0)
    assert torch.equal(model(src, tgt), a)
    model.eval()
    torch.testing.assert_close(model(src, tgt), model(src, tgt))

