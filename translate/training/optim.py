"""Learning-rate schedules. The optimizer itself comes from the config (`_target_: torch.optim.AdamW`,
`_partial_: true`), so Adam, AdamW and the 2014 paper's Adadelta need no code here.

Every schedule is built as `schedule(optimizer)` from a partial and takes the optimizer's configured lr as its
peak. `step()` runs after each optimizer step, `on_validation(metric)` after each validation (only the plateau
schedule listens). Their state is plain numbers, so checkpoints load with `torch.load(weights_only=True)`.
"""

import math

import torch


class Schedule:
    """Sets every param group's lr to `base_lr * factor(step)`; subclasses define `factor`."""

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.step_count = 0
        self._apply()

    def factor(self, step: int) -> float:
        raise AssertionError("subclasses define factor()")

    def _apply(self) -> None:
        f = self.factor(self.step_count)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * f

    def step(self) -> None:
        self.step_count += 1
        self._apply()

    def on_validation(self, metric: float) -> None:
        """Called with the dev metric (higher is better) after each validation."""

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"step_count": self.step_count, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state["step_count"])
        self.base_lrs = [float(x) for x in state["base_lrs"]]
        self._apply()


class Constant(Schedule):
    """Linear warmup to the configured lr, then constant (warmup_steps=0: constant from the start)."""

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_steps: int = 0):
        self.warmup_steps = warmup_steps
        super().__init__(optimizer)

    def factor(self, step: int) -> float:
        if self.warmup_steps > 0 and step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        return 1.0


class InverseSqrt(Schedule):
    """Vaswani et al. (2017): linear warmup to the peak lr, then decay with 1/sqrt(step).

    factor(step) = min(s / warmup, sqrt(warmup / s)) with s = step + 1, so the peak (factor 1) is at warmup.
    Never below min_lr.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_steps: int = 4000, min_lr: float = 0.0):
        assert warmup_steps > 0, "InverseSqrt needs warmup_steps > 0"
        self.warmup_steps = warmup_steps
        self.min_lr = min_lr
        super().__init__(optimizer)

    def factor(self, step: int) -> float:
        s = step + 1
        return min(s / self.warmup_steps, math.sqrt(self.warmup_steps / s))

    def _apply(self) -> None:
        f = self.factor(self.step_count)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = max(base * f, self.min_lr) if self.step_count >= self.warmup_steps else base * f


class ReduceOnPlateau(Schedule):
    """Warmup, then constant; the lr is multiplied by `factor_on_plateau` when the dev metric (dev BLEU,
    higher is better) has not improved for `patience` validations, never below min_lr."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_steps: int = 0,
        factor_on_plateau: float = 0.5,
        patience: int = 2,
        min_lr: float = 1e-6,
    ):
        assert 0.0 < factor_on_plateau < 1.0, "factor_on_plateau must be in (0, 1)"
        self.warmup_steps = warmup_steps
        self.factor_on_plateau = factor_on_plateau
        self.patience = patience
        self.min_lr = min_lr
        self.scale = 1.0
        self.best = -math.inf
        self.bad_validations = 0
        super().__init__(optimizer)

    def factor(self, step: int) -> float:
        warm = (step + 1) / self.warmup_steps if self.warmup_steps > 0 and step < self.warmup_steps else 1.0
        return warm * self.scale

    def _apply(self) -> None:
        f = self.factor(self.step_count)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = max(base * f, min(self.min_lr, base))

    def on_validation(self, metric: float) -> None:
        if metric > self.best:
            self.best, self.bad_validations = metric, 0
            return
        self.bad_validations += 1
        if self.bad_validations > self.patience:
            self.scale *= self.factor_on_plateau
            self.bad_validations = 0
            self._apply()

    def state_dict(self) -> dict:
        return super().state_dict() | {
            "scale": self.scale,
            "best": self.best,
            "bad_validations": self.bad_validations,
        }

    def load_state_dict(self, state: dict) -> None:
        self.scale = float(state["scale"])
        self.best = float(state["best"])
        self.bad_validations = int(state["bad_validations"])
        super().load_state_dict(state)
