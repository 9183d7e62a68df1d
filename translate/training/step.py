"""One optimizer update over a group of micro-batches: gradient accumulation (DDP syncs gradients on the last
micro-batch only), mixed precision, clipping, the skip of a non-finite update, and an out-of-memory error that
says which options to change.

Legend: B batch, T target length, V target vocabulary.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from translate.data.batching import Batch
from translate.training import distributed
from translate.training.errors import TrainingError
from translate.training.loss import label_smoothed_loss

if TYPE_CHECKING:
    from translate.training.setup import Run


@dataclass
class StepResult:
    applied: bool  # False: the loss or the gradient was not finite and the update was skipped
    tokens: float  # target tokens in the update, all ranks
    rank_tokens: int  # target tokens in the update, this rank
    loss: float  # label-smoothed loss sum, all ranks
    nll: float  # NLL sum, all ranks
    grad_norm: float  # before clipping
    polled: list[float]  # what `poll` returned, summed over ranks

    @property
    def loss_per_token(self) -> float:
        return self.loss / self.tokens


def is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.OutOfMemoryError) or (
        isinstance(e, RuntimeError) and "out of memory" in str(e)
    )


def train_step(
    run: Run, group: list[Batch], step: int, bad_steps: int, poll: Callable[[], list[float]]
) -> StepResult:
    """Forward and backward over the micro-batches in `group`, then one optimizer update unless the loss or
    the gradient is not finite (`bad_steps`: skipped updates in a row before this one; trainer.max_bad_steps
    in a row stop the run). The loss is normalised by the update's target tokens over all ranks, so
    accumulation and DDP give the update of one big batch.

    `poll` is read after the backward pass and its numbers (signals, clocks) are summed over ranks in the same
    reduction as the losses, so that every rank takes the decisions that depend on them together.
    """
    trainer, info = run.cfg.trainer, run.info
    n_tokens = sum(b.n_tgt_tokens for b in group)
    (global_tokens,) = distributed.all_reduce_sum(info, [float(n_tokens)])
    # DDP averages gradients over ranks, so scale by world_size to get sum / global tokens.
    loss_scale = info.world_size / global_tokens
    loss_sum = nll_sum = 0.0
    try:
        for i, b in enumerate(group):
            b = b.to(info.device, non_blocking=True)
            sync = i == len(group) - 1 or not info.enabled
            with contextlib.nullcontext() if sync else run.train_model.no_sync():
                with run.autocast():
                    logits = run.train_model(b.src, b.tgt_in)  # (B, T, V)
                loss, nll = label_smoothed_loss(logits, b.tgt_out, trainer.label_smoothing)
                run.scaler.scale(loss * loss_scale).backward()
            loss_sum += float(loss.detach())
            nll_sum += float(nll)
        run.scaler.unscale_(run.optimizer)
        max_norm = trainer.clip_norm if trainer.clip_norm > 0 else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(run.model.parameters(), max_norm))
    except Exception as e:
        if is_oom(e):
            raise TrainingError(
                f"out of memory at step {step} with trainer.max_tokens={trainer.max_tokens}: use a smaller "
                f"token budget, e.g. trainer.max_tokens={trainer.max_tokens // 2} "
                f"trainer.accum_steps={2 * trainer.accum_steps} (same tokens per update)"
            ) from e
        raise

    g_loss, g_nll, *polled = distributed.all_reduce_sum(info, [loss_sum, nll_sum, *poll()])
    applied = math.isfinite(g_loss) and (math.isfinite(grad_norm) or trainer.precision == "fp16")
    if applied:
        run.scaler.step(run.optimizer)  # fp16: skips the update by itself when gradients overflowed
        run.scaler.update()
        run.scheduler.step()
    else:
        bad_steps += 1
        warnings.warn(
            f"step {step + 1}: non-finite loss or gradient (loss {g_loss}, grad norm {grad_norm}); "
            f"update skipped ({bad_steps}/{trainer.max_bad_steps} in a row)",
            RuntimeWarning,
            stacklevel=1,
        )
        if bad_steps >= trainer.max_bad_steps:
            raise TrainingError(
                f"loss was NaN/inf for {bad_steps} steps in a row at step {step}: lower optimizer.lr, "
                f"set trainer.clip_norm, or use trainer.precision=fp32"
            )
    run.optimizer.zero_grad(set_to_none=True)
    return StepResult(applied, global_tokens, n_tokens, g_loss, g_nll, grad_norm, polled)
