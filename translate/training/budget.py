"""When to stop: max_steps, max_epochs and max_time (whichever comes first), and the ETA shown on the bar."""

import re
import time

from translate.training.errors import TrainingError

_UNITS = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(value) -> float:
    """'90' / 90 / '90s' -> 90.0, '10m' -> 600.0, '1h' / '1.5h' -> seconds; None / 0 -> 0.0 (no limit).

    Several parts may be joined: '1h30m'.
    """
    if value is None:
        return 0.0
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().lower().replace(" ", "")
    parts = re.findall(r"(\d+(?:\.\d+)?)(min|[smhd]?)", text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise TrainingError(
            f"trainer.max_time: cannot read {value!r} (use seconds, or e.g. '90s', '10m', '1h')"
        )
    return sum(float(n) * _UNITS[u] for n, u in parts)


class Budget:
    """Tracks progress against the three limits; 0 means 'no limit' for each.

    max_time counts from `start` (the loop passes its own start, so set-up counts too); a resumed run gets
    its own time budget.
    """

    def __init__(
        self,
        max_steps: int = 0,
        max_epochs: int = 0,
        max_time=0,
        steps_per_epoch: int = 0,
        start: float | None = None,
    ):
        if not (max_steps or max_epochs or parse_duration(max_time)):
            raise TrainingError("set at least one of trainer.max_steps, trainer.max_epochs, trainer.max_time")
        self.max_steps = int(max_steps or 0)
        self.max_epochs = int(max_epochs or 0)
        self.max_time = parse_duration(max_time)
        self.steps_per_epoch = max(int(steps_per_epoch), 1)  # for the ETA; the loop sets it once known
        self.start = time.monotonic() if start is None else start  # a time.monotonic() value

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def eta(self, step: int, epoch: int, batch_in_epoch_fraction: float, steps_this_run: int) -> float:
        """Seconds left, estimated from this run's pace (steps and epochs) or the clock (max_time)."""
        left = []
        elapsed = self.elapsed()
        if self.max_time:
            left.append(max(self.max_time - elapsed, 0.0))
        if steps_this_run > 0:
            per_step = elapsed / steps_this_run
            if self.max_steps:
                left.append(max(self.max_steps - step, 0) * per_step)
            if self.max_epochs:
                epochs_left = max(self.max_epochs - epoch - batch_in_epoch_fraction, 0.0)
                left.append(epochs_left * self.steps_per_epoch * per_step)
        return min(left) if left else float("nan")

    def time_up(self) -> bool:
        return bool(self.max_time) and self.elapsed() >= self.max_time

    def exhausted(self, step: int, epoch: int, time_up: bool | None = None) -> str | None:
        """The name of the limit reached, or None. `time_up` overrides the clock (DDP: the ranks' verdict)."""
        if self.max_steps and step >= self.max_steps:
            return f"max_steps={self.max_steps}"
        if self.max_epochs and epoch >= self.max_epochs:
            return f"max_epochs={self.max_epochs}"
        if self.time_up() if time_up is None else time_up:
            return f"max_time={format_seconds(self.max_time)}"
        return None


def format_seconds(seconds: float) -> str:
    """3725 -> '1h02m05s', 65 -> '1m05s', 7.2 -> '7s'."""
    if seconds != seconds:  # NaN
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m{s:02d}s"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"
