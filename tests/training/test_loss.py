import pytest
import torch
import torch.nn.functional as F

from translate.data.vocab import PAD_ID
from translate.training.loss import label_smoothed_loss, label_smoothed_loss_reference


def smoothed_reference(logits, target, smoothing):
    """The definition, written out: cross-entropy against (1 - s) * one-hot + s / V, summed over non-PAD."""
    V = logits.size(-1)
    lprobs = F.log_softmax(logits.double(), dim=-1)  # (B, T, V)
    q = torch.full_like(lprobs, smoothing / V)
    q.scatter_add_(-1, target.unsqueeze(-1), torch.full_like(lprobs[..., :1], 1.0 - smoothing))
    keep = target != PAD_ID  # (B, T)
    loss = -(q * lprobs).sum(-1)[keep].sum()
    nll = -lprobs.gather(-1, target.unsqueeze(-1)).squeeze(-1)[keep].sum()
    return loss, nll


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_matches_the_definition_of_label_smoothing(smoothing):
    B, T, V = 3, 5, 11
    logits = torch.randn(B, T, V)
    target = torch.randint(4, V, (B, T))
    target[0, 3:] = PAD_ID
    target[2, 1:] = PAD_ID
    loss, nll = label_smoothed_loss(logits, target, smoothing)
    ref_loss, ref_nll = smoothed_reference(logits, target, smoothing)
    assert loss.dtype == nll.dtype == torch.float32 and not nll.requires_grad
    torch.testing.assert_close(loss.double(), ref_loss)
    torch.testing.assert_close(nll.double(), ref_nll)
    if smoothing > 0:
        assert loss > nll  # the smoothed target also charges the non-gold classes
    library = F.cross_entropy(logits.view(-1, V), target.view(-1), ignore_index=PAD_ID,
                              label_smoothing=smoothing, reduction="sum")  # fmt: skip
    torch.testing.assert_close(loss, library)  # F.cross_entropy's value, from the log-softmax the NLL uses


def test_pad_positions_get_no_gradient():
    logits = torch.randn(2, 4, 7, requires_grad=True)
    target = torch.tensor([[5, 6, PAD_ID, PAD_ID], [4, 4, 4, PAD_ID]])
    loss, _ = label_smoothed_loss(logits, target, 0.1)
    loss.backward()
    assert logits.grad[0, 2:].abs().sum() == 0
    assert logits.grad[1, 3].abs().sum() == 0
    assert logits.grad[0, :2].abs().sum() > 0


def test_bf16_logits_are_scored_in_fp32():
    logits = torch.randn(2, 3, 9)
    target = torch.randint(4, 9, (2, 3))
    loss32, _ = label_smoothed_loss(logits, target, 0.1)
    loss16, _ = label_smoothed_loss(logits.bfloat16(), target, 0.1)
    assert loss16.dtype == torch.float32
    torch.testing.assert_close(loss16, loss32, rtol=2e-2, atol=0)


def _logits_and_target(dtype, B=3, T=5, V=11):
    logits = (3 * torch.randn(B, T, V)).to(dtype).requires_grad_(True)
    target = torch.randint(4, V, (B, T))
    target[0, 3:] = PAD_ID
    target[2, 1:] = PAD_ID
    return logits, target


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_hand_written_backward_matches_autograd(smoothing, dtype):
    torch.manual_seed(0)
    logits, target = _logits_and_target(dtype)
    loss, nll = label_smoothed_loss(logits, target, smoothing)
    (grad,) = torch.autograd.grad(2.5 * loss, logits)  # an incoming gradient other than 1
    ref_loss, ref_nll = label_smoothed_loss_reference(logits, target, smoothing)
    (ref_grad,) = torch.autograd.grad(2.5 * ref_loss, logits)
    torch.testing.assert_close(loss, ref_loss)
    torch.testing.assert_close(nll, ref_nll)
    assert grad.dtype == dtype
    # bf16: both round the same fp32 gradient to bf16 once, so they agree to one bf16 step
    tol = dict(atol=1e-6, rtol=1e-5) if dtype == torch.float32 else dict(atol=1e-3, rtol=8e-3)
    torch.testing.assert_close(grad, ref_grad, **tol)
    assert grad[0, 3:].abs().sum() == 0 and grad[2, 1:].abs().sum() == 0  # PAD rows: no gradient


def test_gradcheck_in_float64():
    logits, target = _logits_and_target(torch.float64, B=3, T=3, V=6)
    target[1, 0] = 5
    assert torch.autograd.gradcheck(lambda x: label_smoothed_loss(x, target, 0.2)[0], (logits,))
