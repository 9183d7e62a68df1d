"""scripts/bench_detect.py on a few verses with Lingua: the JSON and the Markdown table it writes."""

import json

import pytest

pytest.importorskip("lingua", reason="the serve extra is not installed: pip install -e '.[serve]'")

import bench_detect  # noqa: E402  (scripts/ is on sys.path: tests/scripts/conftest.py)


def test_bench_detect_writes_accuracy_per_kind_and_language(tmp_path):
    out = tmp_path / "detect.json"
    assert bench_detect.main(["--verses", "20", "--detectors", "lingua", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["meta"]["counts"] == {"es": 20, "en": 20, "fr": 60, "it": 60, "pt": 60}
    (row,) = report["results"]
    assert row["detector"] == "lingua" and len(row["accuracy"]) == 4 * 5
    assert row["accuracy"]["sentence/fr"] >= 90 and row["accuracy"]["sentence/es"] >= 90  # whole sentences
    assert all(0 <= v <= 100 for v in row["accuracy"].values())
    table = out.with_suffix(".md").read_text().splitlines()
    assert table[0].startswith("| detector | sentence es |") and table[2].startswith("| lingua |")
    assert bench_detect.first_words("¡Hola, mundo! ¿Qué tal?", 2) == "Hola mundo"
