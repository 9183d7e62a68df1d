import math
import time

import pytest

from translate.training.throughput import Throughput


def test_the_window_averages_applied_updates_only():
    m = Throughput()
    m.update(100.0, True, loss=250.0, nll=200.0, grad_norm=1.0)
    m.update(300.0, False, loss=math.nan, nll=math.nan, grad_norm=math.inf)  # skipped: the bar only
    m.update(100.0, True, loss=150.0, nll=100.0, grad_norm=3.0)
    m.update(100.0, True, loss=100.0, nll=100.0, grad_norm=math.inf)  # fp16 overflow: the norm counts 0
    assert m.steps == 3
    got = m.take()
    assert got["loss"] == 500.0 / 300.0 and got["ppl"] == pytest.approx(math.exp(400.0 / 300.0))
    assert got["grad_norm"] == 4.0 / 3.0 and got["tokens_per_s"] > 0
    assert m.steps == 0 and m.tokens == 0.0  # a new window


def test_bar_rate_is_smoothed_over_updates():
    m = Throughput()
    m.last_update_end = time.monotonic() - 1.0  # the first update took a second
    m.update(1000.0, True, 1.0, 1.0, 1.0)
    assert m.bar_rate == pytest.approx(1000.0, rel=0.01)
    m.last_update_end = time.monotonic() - 1.0
    m.update(2000.0, True, 1.0, 1.0, 1.0)
    assert m.bar_rate == pytest.approx(0.9 * 1000.0 + 0.1 * 2000.0, rel=0.01)


def test_pause_leaves_validation_time_out_of_tokens_per_s():
    m = Throughput()
    m.start -= 10.0  # 10 s ago, of which 8 s went to validation
    m.pause(8.0)
    m.update(1000.0, True, 1.0, 1.0, 1.0)
    assert m.take()["tokens_per_s"] == pytest.approx(500.0, rel=0.01)
