"""scripts/bench_products.py at small shapes: a row per thread count, row count and shape, our kernel checked
against F.linear before it is timed, the JSON and the table written; bad shapes refused by name."""

import json

import bench_products  # scripts/ on sys.path (tests/scripts/conftest.py)
import pytest

from translate.models import cpu_linear


def test_a_row_per_thread_count_row_count_and_shape(tmp_path, capsys):
    out = tmp_path / "products.json"
    argv = ["--shapes", "8x40", "33x5", "--rows", "1", "7", "--threads", "1", "2", "--min-time", "0.01",
            "--out", str(out)]  # fmt: skip
    assert bench_products.main(argv) == 0
    report = json.loads(out.read_text())
    got = [(r["threads"], r["rows"], r["in"], r["out"]) for r in report["results"]]
    assert got == [(t, r, k, n) for t in (1, 2) for r in (1, 7) for k, n in ((8, 40), (33, 5))]
    kernel = cpu_linear._library()[0] is not None
    for r in report["results"]:
        assert r["us"]["f_linear"] > 0 and ("ours" in r["us"]) == kernel
    assert capsys.readouterr().out == out.with_suffix(".md").read_text()


@pytest.mark.parametrize("shape", ["3", "3x0", "axb", "1x2x3"])
def test_bad_shapes_are_refused_by_name(shape, capsys):
    with pytest.raises(SystemExit):
        bench_products.main(["--shapes", shape])
    assert f"--shapes: {shape!r}" in capsys.readouterr().err
