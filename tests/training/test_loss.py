import pytest
import torch
import torch.nn.functional as F

from translate.data.vocab import PAD_ID
from translate.training.loss import label_smoothed_loss


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
