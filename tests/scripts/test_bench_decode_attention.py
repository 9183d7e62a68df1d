"""scripts/bench_decode_attention.py at small shapes: a row per shape and thread count, our kernel checked
against SDPA before it is timed, the JSON and the table written; bad shapes refused by name."""

import json

import bench_decode_attention  # scripts/ on sys.path (tests/scripts/conftest.py)
import pytest

from translate.attention import cpu_decode


def test_a_row_per_shape_and_thread_count(tmp_path, capsys):
    out = tmp_path / "attn.json"
    argv = ["--shapes", "3x5", "2x4x3", "--threads", "1", "2", "--heads", "2", "--head-dim", "8",
            "--min-time", "0.01", "--out", str(out)]  # fmt: skip
    assert bench_decode_attention.main(argv) == 0
    report = json.loads(out.read_text())
    rows = [(r["threads"], r["rows"], r["keys"], r["queries"]) for r in report["results"]]
    assert rows == [(1, 3, 5, 1), (1, 2, 4, 3), (2, 3, 5, 1), (2, 2, 4, 3)]
    kernel = cpu_decode._library()[0] is not None
    for r in report["results"]:
        assert r["us"]["sdpa"] > 0 and r["us"]["read"] > 0 and ("ours" in r["us"]) == kernel
    assert capsys.readouterr().out == out.with_suffix(".md").read_text()


@pytest.mark.parametrize("shape", ["3", "3x0", "axb", "1x2x3x4"])
def test_bad_shapes_are_refused_by_name(shape, capsys):
    with pytest.raises(SystemExit):
        bench_decode_attention.main(["--shapes", shape])
    assert f"--shapes: {shape!r}" in capsys.readouterr().err
