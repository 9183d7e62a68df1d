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


def test_eta_uses_the_nearest_limit():
    b = Budget(max_steps=100, max_time="1h", steps_per_epoch=50)
    eta = b.eta(step=50, epoch=1, batch_in_epoch_fraction=0.0, steps_this_run=50)
    assert 0 <= eta < 1.0  # 50 steps took ~0 s, so 50 more take about as long; far below the hour
    assert format_seconds(3725) == "1h02m05s" and format_seconds(65) == "1m05s"
