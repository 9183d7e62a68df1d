"""Label-smoothed cross-entropy (Szegedy et al. 2016; Vaswani et al. 2017, section 5.4), by F.cross_entropy.

The loss is returned as a SUM over non-pad target tokens, with the plain NLL sum beside it: the loop divides
by the number of target tokens in the whole optimizer step (all micro-batches, all ranks), so gradient
accumulation and DDP give the same update as one big batch.
"""

import torch
import torch.nn.functional as F

from translate.data.vocab import PAD_ID


def label_smoothed_loss(
    logits: torch.Tensor, target: torch.Tensor, smoothing: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """logits (B, T, V), target (B, T) -> (smoothed loss sum, NLL sum), over the non-PAD targets, in fp32.

    The smoothed target puts 1 - smoothing on the gold token and spreads `smoothing` uniformly over the V
    classes. The NLL sum (detached, for perplexity) costs one more log-softmax, without autograd, when
    smoothing > 0. Computed in fp32 whatever the logits' dtype (bf16 autocast).
    """
    logits = logits.float().flatten(0, 1)  # (B*T, V)
    target = target.flatten()  # (B*T,)
    loss = F.cross_entropy(logits, target, ignore_index=PAD_ID, label_smoothing=smoothing, reduction="sum")
    if smoothing == 0.0:
        return loss, loss.detach()
    with torch.no_grad():
        nll = F.cross_entropy(logits, target, ignore_index=PAD_ID, reduction="sum")
    return loss, nll
