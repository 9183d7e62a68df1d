"""Label-smoothed cross-entropy (Szegedy et al. 2016; Vaswani et al. 2017, section 5.4).

The loss is returned as a SUM over non-pad target tokens, with the plain NLL sum beside it: the loop divides
by the number of target tokens in the whole optimizer step (all micro-batches, all ranks), so gradient
accumulation and DDP give the same update as one big batch.

Why not F.cross_entropy(..., label_smoothing=s): it returns the smoothed loss only, and the NLL the loop logs
(perplexity) would need a second log-softmax over (B*T, V): 78 ms more per step at the default batch (3,000
tokens, 8k vocabulary, 2 threads), about 7% of a training step on the 2-core Xeon. Here both come from one
log-softmax; the tests check equality with F.cross_entropy.

Why a hand-written backward: the (B*T, V) tensors are the largest of a step (3,000 x 8,000 fp32 = 96 MB at the
default batch). Autograd's backward through log-softmax, gather and mean materialises four of them (the mean's
and the gather's gradients, their sum, log-softmax's) plus the cast back to bf16; the gradient is simply
softmax - smoothed target, so `label_smoothed_loss` writes it straight from the saved log-probabilities
(exp, minus the gold share, times the incoming gradient, in place, then one cast to the logits' dtype).
`label_smoothed_loss_reference` is the same loss through autograd; the tests compare the two, values and
gradients.

Legend: N = B*T target positions, V target vocabulary.
"""

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from translate.data.vocab import PAD_ID


def label_smoothed_loss(
    logits: torch.Tensor, target: torch.Tensor, smoothing: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """logits (B, T, V), target (B, T) -> (smoothed loss sum, NLL sum), over the non-PAD targets, in fp32.

    The smoothed target puts 1 - smoothing on the gold token and spreads `smoothing` uniformly over the V
    classes. The NLL sum is detached (for perplexity). Computed in fp32 whatever the logits' dtype (bf16
    autocast); the gradient comes back in the logits' dtype.
    """
    V = logits.size(-1)
    return _SmoothedCrossEntropy.apply(logits.reshape(-1, V), target.reshape(-1), float(smoothing))


class _SmoothedCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: torch.Tensor, target: torch.Tensor, smoothing: float):
        """logits (N, V), target (N,) -> (loss sum, NLL sum); keeps the log-probabilities (fp32, fp64 for fp64
        logits) for backward."""
        lprobs = F.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=-1)  # (N, V)
        keep = target != PAD_ID  # (N,)
        nll_sum = -lprobs.gather(1, target.unsqueeze(1)).squeeze(1).masked_fill(~keep, 0.0).sum()
        if smoothing == 0.0:
            loss_sum = nll_sum.clone()
        else:
            uniform = -lprobs.mean(dim=-1)  # (N,): cross-entropy against the uniform distribution
            loss_sum = (1.0 - smoothing) * nll_sum + smoothing * uniform.masked_fill(~keep, 0.0).sum()
        ctx.save_for_backward(lprobs, target, keep)
        ctx.smoothing, ctx.dtype = smoothing, logits.dtype
        ctx.mark_non_differentiable(nll_sum)
        return loss_sum, nll_sum

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss: torch.Tensor, _grad_nll: torch.Tensor):
        """d loss / d logits = (softmax - (1 - s) one-hot - s / V) per kept row, times the incoming
        gradient."""
        lprobs, target, keep = ctx.saved_tensors
        s, V = ctx.smoothing, lprobs.size(1)
        weight = (grad_loss * keep).unsqueeze(1)  # (N, 1) fp32, 0 on PAD rows
        grad = torch.exp(lprobs)  # (N, V) softmax, fp32
        grad.scatter_add_(1, target.unsqueeze(1), torch.full_like(weight, -(1.0 - s)))  # minus the gold share
        grad.mul_(weight).sub_(weight * (s / V))  # (softmax - target) * weight, in fp32
        return grad.to(ctx.dtype), None, None  # rounded once to the logits' dtype (no copy for fp32)


def label_smoothed_loss_reference(
    logits: torch.Tensor, target: torch.Tensor, smoothing: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """label_smoothed_loss through autograd (log-softmax, gather, mean): the reference its backward is tested
    against."""
    V = logits.size(-1)
    lprobs = F.log_softmax(logits.float().view(-1, V), dim=-1)  # (B*T, V)
    target = target.reshape(-1)  # (B*T,)
    keep = target != PAD_ID  # (B*T,)
    nll_sum = -lprobs.gather(1, target.unsqueeze(1)).squeeze(1).masked_fill(~keep, 0.0).sum()
    if smoothing == 0.0:
        return nll_sum, nll_sum.detach()
    uniform = -lprobs.mean(dim=-1)  # (B*T,): cross-entropy against the uniform distribution
    loss_sum = (1.0 - smoothing) * nll_sum + smoothing * uniform.masked_fill(~keep, 0.0).sum()
    return loss_sum, nll_sum.detach()
