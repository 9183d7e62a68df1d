"""Label-smoothed cross-entropy (Szegedy et al. 2016; Vaswani et al. 2017, section 5.4).

The loss is returned as a SUM over non-pad target tokens, together with the plain NLL sum and the token count:
the loop divides by the number of target tokens in the whole optimizer step (all micro-batches, all ranks), so
gradient accumulation and DDP give the same update as one big batch.
"""

import torch
import torch.nn.functional as F

from translate.data.vocab import PAD_ID


def label_smoothed_loss(
    logits: torch.Tensor, target: torch.Tensor, smoothing: float = 0.0, ignore_index: int = PAD_ID
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """logits (B, T, V), target (B, T) -> (smoothed loss sum, nll sum, number of non-pad tokens).

    The smoothed target puts 1 - smoothing on the gold token and spreads `smoothing` uniformly over the V
    classes; PAD positions count for nothing. Computed in fp32 whatever the logits' dtype (bf16 autocast).
    """
    V = logits.size(-1)
    lprobs = F.log_softmax(logits.float().view(-1, V), dim=-1)  # (B*T, V)
    target = target.reshape(-1)  # (B*T,)
    keep = target != ignore_index  # (B*T,)
    nll = -lprobs.gather(1, target.clamp(min=0).unsqueeze(1)).squeeze(1)  # (B*T,)
    nll_sum = nll.masked_fill(~keep, 0.0).sum()
    if smoothing > 0.0:
        uniform = -lprobs.mean(dim=-1)  # (B*T,): cross-entropy against the uniform distribution
        loss_sum = (1.0 - smoothing) * nll_sum + smoothing * uniform.masked_fill(~keep, 0.0).sum()
    else:
        loss_sum = nll_sum
    return loss_sum, nll_sum.detach(), int(keep.sum())
