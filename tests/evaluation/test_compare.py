"""scripts/compare.py (`make compare`) on the smoke experiment: trains what is missing, reuses the rest."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts/compare.py"


def load_compare():
    spec = importlib.util.spec_from_file_location("compare", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compare_trains_then_reuses_and_writes_one_report(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    compare = load_compare()
    runs, out, cache = tmp_path / "runs", tmp_path / "report", tmp_path / "cache"
    argv = ["--experiment", "smoke", "--models", "transformer", "--max-lens", "30", "50",
            "--runs", str(runs), "--out", str(out),
            "--train-args", "device=cpu", f"cache_dir={cache}", "trainer.max_steps=4",
            "trainer.val_every_steps=4", "trainer.val_subset=4", "trainer.val_search.max_len_a=0",
            "trainer.val_search.max_len_b=2",
            "--eval-args", "device=cpu", f"cache_dir={cache}", "search.beam_size=1", "search.max_len_a=0",
            "search.max_len_b=4", "bootstrap.resamples=10", "alignments=[0]", "progress=false"]  # fmt: skip
    assert compare.main(argv) == 0
    first = capfd.readouterr().out
    assert first.count("-m translate.train") == 2
    for n in (30, 50):
        assert (runs / f"transformer-{n}/checkpoints/best.pt").is_file()
        cfg = (runs / f"transformer-{n}/config.yaml").read_text()
        assert f"max_len: {n}" in cfg  # each run trained on its own length limit
    results = json.loads((out / "results.json").read_text())
    assert [m["label"] for m in results["models"]] == ["Transformer-30", "Transformer-50"]
    assert (out / "bleu_by_length.png").read_bytes()[:4] == b"\x89PNG"
    readme = (out / "README.md").read_text()
    assert "| Transformer-30 |" in readme and "| trained |" in readme and "![BLEU by source length]" in readme
    for m in results["models"]:
        assert m["alignments"] and f"({m['alignments'][0]})" in readme
        assert (out / m["alignments"][0]).is_file()

    before = (runs / "transformer-30/checkpoints/best.pt").stat().st_mtime_ns
    assert compare.main(argv) == 0
    second = capfd.readouterr().out
    assert "-m translate.train" not in second and second.count("reusing") == 2
    assert (runs / "transformer-30/checkpoints/best.pt").stat().st_mtime_ns == before
    assert "| reused |" in (out / "README.md").read_text()


def test_unknown_experiment_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        load_compare().main(["--experiment", "no_such_experiment"])
    assert e.value.code == 2
    assert "conf/experiment/no_such_experiment.yaml does not exist" in capsys.readouterr().err


def test_the_default_runs_are_the_experiments_sweep():
    """compare.py keeps no model or length list of its own: bahdanau_fig2's sweep is the default."""
    compare = load_compare()
    swept = compare.sweep("bahdanau_fig2")
    assert swept == (["rnnencdec", "rnnsearch", "transformer"], [30, 50])
    assert [compare.label(m) for m in swept[0]] == ["RNNencdec", "RNNsearch", "Transformer"]
    assert compare.sweep("smoke") == ([], [])
    with pytest.raises(SystemExit):  # smoke sweeps nothing: the runs must be named
        compare.main(["--experiment", "smoke"])
