"""Learning-rate schedules. The optimizer itself comes from the config (`_target_: torch.optim.AdamW`,
`_partial_: true`), so Adam, AdamW and the 2014 paper's Adadelta need no code here.

Every schedule is built as `schedule(optimizer)` from a partial and takes the optimizer's configured lr as its
peak. `step()` runs after each optimizer step; ReduceOnPlateau also hears `on_validation(metric)` after each
validation. Constant and InverseSqrt are torch's LambdaLR, so any other `torch.optim.lr_scheduler` class
that steps once per update also works from a config. Their state is plain numbers, so checkpoints load with
`torch.load(weights_only=True)`; the options (warmup, min_lr) always come from the config, on resume too.
"""

import math

import torch
from torch.optim.lr_scheduler import LambdaLR


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warmup: (step + 1) / warmup_steps for the first warmup_steps steps (0-based), then 1."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    return 1.0


class WarmupLambdaLR(LambdaLR):
    """LambdaLR that keeps its options out of the state: a resumed run takes them from its config."""

    OPTIONS: tuple[str, ...] = ()  # attributes set from the config: not saved, not restored

    def state_dict(self) -> dict:
        return {k: v for k, v in super().state_dict().items() if k not in self.OPTIONS}


class Constant(WarmupLambdaLR):
    """Linear warmup to the configured lr, then constant (warmup_steps=0: constant from the start)."""

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_steps: int = 0):
        super().__init__(optimizer, lambda step: warmup_factor(step, warmup_steps))


class InverseSqrt(WarmupLambdaLR):
    """Vaswani et al. (2017): linear warmup to the peak lr, then decay with 1/sqrt(step).

    factor(step) = min(s / warmup, sqrt(warmup / s)) with s = step + 1, so the peak (factor 1) is at warmup.
    After the warmup the lr never goes below min_lr.
    """

    OPTIONS = ("warmup_steps", "min_lr")

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_steps: int = 4000, min_lr: float = 0.0):
        assert warmup_steps > 0, "InverseSqrt needs warmup_steps > 0"
        self.warmup_steps, self.min_lr = warmup_steps, min_lr

        def factor(step: int) -> float:
            s = step + 1
            return min(s / warmup_steps, math.sqrt(warmup_steps / s))

        super().__init__(optimizer, factor)

    def get_lr(self) -> list[float]:
        lrs = super().get_lr()
        if self.last_epoch < self.warmup_steps:
            return lrs
        return [max(lr, self.min_lr) for lr in lrs]


class ReduceOnPlateau:
    """Warmup, then constant; the lr is multiplied by `factor_on_plateau` when the dev metric (dev BLEU,
    higher is better) has not improved for `patience` validations, never below min_lr.

    Custom because torch's ReduceLROnPlateau has no warmup and steps on the metric, not on every update.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_steps: int = 0,
        factor_on_plateau: float = 0.5,
        patience: int = 2,
        min_lr: float = 1e-6,
    ):
        assert 0.0 < factor_on_plateau < 1.0, "factor_on_plateau must be in (0, 1)"
        self.optimizer = optimizer
        self.warmup_steps = warmup_steps
        self.factor_on_plateau = factor_on_plateau
        self.patience = patience
        self.min_lr = min_lr
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.step_count = 0
        self.scale = 1.0
        self.best = -math.inf
        self.bad_validations = 0
        self._apply()

    def _apply(self) -> None:
        f = warmup_factor(self.step_count, self.warmup_steps) * self.scale
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = max(base * f, min(self.min_lr, base))

    def step(self) -> None:
        self.step_count += 1
        self._apply()

    def on_validation(self, metric: float) -> None:
        """Called with the dev metric (higher is better) after each validation."""
        if metric > self.best:
            self.best, self.bad_validations = metric, 0
            return
        self.bad_validations += 1
        if self.bad_validations > self.patience:
            self.scale *= self.factor_on_plateau
            self.bad_validations = 0
            self._apply()

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {
            "step_count": self.step_count,
            "base_lrs": list(self.base_lrs),
            "scale": self.scale,
            "best": self.best,
            "bad_validations": self.bad_validations,
        }

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state["step_count"])
        self.base_lrs = [float(x) for x in state["base_lrs"]]
        self.scale = float(state["scale"])
        self.best = float(state["best"])
        self.bad_validations = int(state["bad_validations"])
        self._apply()
