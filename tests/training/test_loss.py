import pytest
import torch
import torch.nn.functional as F

from translate.data.vocab import PAD_ID
from translate.training.loss import label_smoothed_loss


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_matches_torch_cross_entropy_with_label_smoothing(smoothing):
    B, T, V = 3, 5, 11
    logits = torch.randn(B, T, V, dtype=torch.float64)
    target = torch.randint(4, V, (B, T))
    target[0, 3:] = PAD_ID
    target[2, 1:] = PAD_ID
    loss, nll, n = label_smoothed_loss(logits, target, smoothing)
    ref = F.cross_entropy(
        logits.view(-1, V), target.view(-1), ignore_index=PAD_ID, label_smoothing=smoothing, reduction="sum"
    )
    ref_nll = F.cross_entropy(logits.view(-1, V), target.view(-1), ignore_index=PAD_ID, reduction="sum")
    assert n == int((target != PAD_ID).sum()) == 3 + 5 + 1
    torch.testing.assert_close(loss.double(), ref)
    torch.testing.assert_close(nll.double(), ref_nll)


def test_pad_positions_get_no_gradient():
    logits = torch.randn(2, 4, 7, requires_grad=True)
    target = torch.tensor([[5, 6, PAD_ID, PAD_ID], [4, 4, 4, PAD_ID]])
    loss, _, _ = label_smoothed_loss(logits, target, 0.1)
    loss.backward()
    assert logits.grad[0, 2:].abs().sum() == 0
    assert logits.grad[1, 3].abs().sum() == 0
    assert logits.grad[0, :2].abs().sum() > 0


def test_bf16_logits_are_scored_in_fp32():
    logits = torch.randn(2, 3, 9)
    target = torch.randint(4, 9, (2, 3))
    loss32, _, _ = label_smoothed_loss(logits, target, 0.1)
    loss16, _, _ = label_smoothed_loss(logits.bfloat16(), target, 0.1)
    assert loss16.dtype == torch.float32
    torch.testing.assert_close(loss16, loss32, rtol=2e-2, atol=0)
