import math
import time

import pytest

from translate.training.budget import Budget, format_seconds, parse_duration
from translate.training.errors import TrainingError


@pytest.mark.parametrize(
    "value,seconds",
    [(None, 0), (0, 0), (90, 90), ("90", 90), ("90s", 90), ("10m", 600), ("1h", 3600), ("1.5h", 5400),
     ("1h30m", 5400), ("2min", 120)],
)  # fmt: skip
def test_parse_duration(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("bad", ["ten minutes", "10x", "m", "-5m"])
def test_parse_duration_rejects_with_option_name(bad):
    with pytest.raises(TrainingError, match="trainer.max_time"):
        parse_duration(bad)


def test_first_limit_reached_stops():
    b = Budget(max_steps=10, max_epochs=2, max_time="1h", steps_per_epoch=4)
    assert b.exhausted(3, 0) is None
    assert b.exhausted(9, 2) == "max_epochs=2"
    assert b.exhausted(10, 1) == "max_steps=10"
    timed = Budget(max_time=1e-9)
    assert timed.time_up() and timed.exhausted(0, 0) == "max_time=0s"
    assert timed.exhausted(0, 0, time_up=False) is None  # under DDP the ranks' joint verdict decides


def test_needs_some_limit():
    with pytest.raises(TrainingError, match="max_steps"):
        Budget(0, 0, 0)


def ran_for(seconds: float, **limits) -> Budget:
    """A budget whose clock started `seconds` ago."""
    return Budget(**limits, start=time.monotonic() - seconds)


def eta(budget: Budget, step: int, epoch: int = 0, fraction: float = 0.0, steps_this_run: int = 50) -> float:
    return budget.eta(step, epoch, batch_in_epoch_fraction=fraction, steps_this_run=steps_this_run)


def test_eta_uses_the_nearest_limit():
    # each budget ran 50 steps in 100 s in this run: 2 s a step
    assert eta(ran_for(100, max_steps=100, max_time="1h"), 50) == pytest.approx(100, rel=1e-3)
    assert eta(ran_for(100, max_steps=100), 80) == pytest.approx(40, rel=1e-3)  # resumed at step 30
    epochs = ran_for(100, max_epochs=3, steps_per_epoch=50)  # 1.5 epochs left = 75 steps
    assert eta(epochs, 50, epoch=1, fraction=0.5) == pytest.approx(150, rel=1e-3)
    clock = ran_for(100, max_steps=100, max_time="2m")  # the clock ends first: 20 s left
    assert eta(clock, 50) == pytest.approx(20, abs=0.1)
    assert eta(clock, 0, steps_this_run=0) == pytest.approx(20, abs=0.1)  # no pace yet: the clock alone
    assert math.isnan(eta(ran_for(100, max_steps=100), 0, steps_this_run=0))


def test_format_seconds():
    assert format_seconds(3725) == "1h02m05s" and format_seconds(65) == "1m05s"
    assert format_seconds(7.2) == "7s" and format_seconds(math.nan) == "?"
