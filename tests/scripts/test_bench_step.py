"""scripts/bench_step.py on the committed copy-task Transformer: a row per row count, both engines timed,
the JSON and the table written; bad counts refused by name."""

import json

import bench_step  # scripts/ on sys.path (tests/scripts/conftest.py)
import pytest

FIXTURES = bench_step.Path(bench_step.__file__).resolve().parents[1] / "tests" / "fixtures"


def test_a_row_per_count_and_both_engines(tmp_path, capsys):
    out = tmp_path / "step.json"
    argv = ["--checkpoint", str(FIXTURES / "copy_transformer.pt"), "--rows", "1", "3", "--src-len", "6",
            "--steps", "4", "--repeats", "1", "--out", str(out)]  # fmt: skip
    assert bench_step.main(argv) == 0
    report = json.loads(out.read_text())
    assert [r["rows"] for r in report["rows"]] == [1, 3]
    for r in report["rows"]:
        assert r["ours"]["first_ms"] > 0 and r["ct2"]["first_ms"] > 0
        assert r["ratio"] == pytest.approx(r["ours"]["step_ms"] / r["ct2"]["step_ms"])
    table = capsys.readouterr().out
    assert table == out.with_suffix(".md").read_text() and "| 3 |" in table


@pytest.mark.parametrize("argv,message", [(["--rows", "0"], "--rows must be >= 1"),
                                          (["--steps", "0"], "--steps must be >= 1")])  # fmt: skip
def test_bad_counts_are_refused_by_name(argv, message, capsys):
    with pytest.raises(SystemExit):
        bench_step.main(["--checkpoint", "x.pt", *argv])
    assert message in capsys.readouterr().err
