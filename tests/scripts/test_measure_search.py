"""scripts/measure_search.py: the settings it parses, the repetition grid it runs and the rule that chooses
the decoding defaults from the dev set."""

import itertools
from dataclasses import replace

import measure_search
import pytest

from translate.search import SearchConfig


def test_off_turns_every_repetition_control_off_whatever_the_defaults():
    base = SearchConfig(no_repeat_ngram_size=3, repetition_penalty=1.2, repeat_guard=4, beam_size=4)
    off = measure_search.parse_setting("off", base)
    assert off == replace(base, no_repeat_ngram_size=0, repetition_penalty=1.0, repeat_guard=0)
    assert not off.repetition
    assert measure_search.parse_setting("off,beam_size=1", base) == replace(off, beam_size=1)
    assert measure_search.parse_setting("default", base) == base
    assert measure_search.parse_setting("repeat_guard=2", base) == replace(base, repeat_guard=2)


@pytest.mark.parametrize("text", ["beam=4", "repeat_guard", "repeat_guard=1"])
def test_a_bad_setting_is_a_one_line_error_naming_it(text):
    with pytest.raises(SystemExit, match=f"--settings '{text}'"):
        measure_search.parse_setting(text, SearchConfig())


def test_the_default_settings_are_the_whole_repetition_grid_once_each():
    grid = set()
    for text in measure_search.SETTINGS:
        s = measure_search.parse_setting(text, SearchConfig())
        grid.add((s.no_repeat_ngram_size, s.repetition_penalty, s.repeat_guard))
    assert len(measure_search.SETTINGS) == len(grid) == 18
    assert grid == set(itertools.product((0, 3, 4), (1.0, 1.1, 1.2), (0, 3)))
    assert measure_search.SETTINGS[0] == "off"


def row(setting: str, bleu: float, repeating: float, seconds: float = 10.0) -> dict:
    return {"setting": setting, "sets": {"dev": {"bleu": bleu, "chrf": 40.0, "repeating": repeating,
                                                 "seconds": seconds, "sentences": 100}}}  # fmt: skip


def test_the_rule_takes_the_fewest_repeats_within_the_bleu_margin_of_the_best():
    rows = [row("off", 20.0, 0.05), row("a", 19.95, 0.01), row("b", 19.7, 0.0), row("c", 20.1, 0.03)]
    choice = measure_search.choose(rows, margin=0.2)
    assert choice["setting"] == "a"  # b repeats less but is 0.4 below the best (c)
    assert choice["candidates"] == ["off", "a", "c"] and choice["best_bleu"] == 20.1
    assert measure_search.choose(rows, margin=0.5)["setting"] == "b"
    assert measure_search.choose(rows, margin=0.0)["setting"] == "c"


def test_the_rule_breaks_ties_by_bleu_then_speed():
    rows = [row("slow", 20.0, 0.01, seconds=30.0), row("fast", 20.0, 0.01, seconds=12.0),
            row("x", 19.9, 0.01)]
    assert measure_search.choose(rows)["setting"] == "fast"
    assert measure_search.choose([row("x", 19.9, 0.01), row("y", 20.0, 0.01)])["setting"] == "y"
    assert measure_search.choose([{"setting": "t", "sets": {"test": {}}}]) is None  # no dev row, no choice


def test_the_report_states_the_choice():
    report = {"checkpoint": "c.pt", "cpu": "AMD EPYC", "threads": 1, "sets": ["dev"], "sizes": {"dev": 100},
              "rows": [row("off", 20.0, 0.05), row("repeat_guard=3", 19.95, 0.0)]}  # fmt: skip
    report["choice"] = measure_search.choose(report["rows"])
    text = measure_search.markdown(report)
    assert "| repeat_guard=3 | 19.95 | 40.00 | 0.0% | 10.0 |" in text
    assert "`repeat_guard=3`; candidates: `off`, `repeat_guard=3`." in text
