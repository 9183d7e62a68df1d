"""scripts/gpu_check.py: the steps it plans, the report it reads from what each step writes."""

import json

import gpu_check


def test_the_plan_runs_the_compiled_kernel_tests_the_benchmarks_training_and_decoding(tmp_path):
    plan = {s["name"]: s for s in gpu_check.steps("py", tmp_path)}
    assert list(plan) == ["kernels", "attention", "train", "decode"]
    assert sum(s["limit"] for s in plan.values()) <= 8 * 60
    assert all(t in plan["kernels"]["cmd"] for t in gpu_check.KERNEL_TESTS)
    assert {"device=cuda", "trainer.precision=auto", "trainer.max_time=3m"} <= set(plan["train"]["cmd"])
    best = str(tmp_path / "train_run" / "checkpoints" / "best.pt")
    assert best in plan["decode"]["cmd"] and "cuda" in plan["decode"]["cmd"]


def test_the_report_reads_each_steps_files(tmp_path):
    (tmp_path / "kernel_tests.xml").write_text(
        '<testsuites><testsuite tests="12" failures="1" errors="0" skipped="2"/></testsuites>')
    attention = {"status": "ok", "length": 128, "backend": "triton", "mask": "causal", "fwd_ms": 0.05,
                 "fwd_bwd_ms": 0.2, "fwd_peak_mib": 1.0, "fwd_bwd_peak_mib": 3.0}  # fmt: skip
    missing = {"status": "not installed", "length": 128, "backend": "fa2", "mask": "causal"}
    (tmp_path / "bench_attention.json").write_text(json.dumps({"rows": [attention, missing]}))
    run = tmp_path / "train_run"
    run.mkdir()
    (run / "train_log.jsonl").write_text(
        '{"group": "train", "step": 950, "tokens_per_s": 81234.0}\n{"group": "dev", "step": 950, "bleu": 7.5,'
        ' "loss": 3.2}\n')  # fmt: skip
    (tmp_path / "train.log").write_text("data: ...\nprecision: auto -> bf16 (cuda with bf16)\n")
    decode = {"model": "Transformer", "search": "beam 5", "kv_cache": True, "sentences": 500,
              "sentences_per_s": 120.0, "tokens_per_s": 3000.0}  # fmt: skip
    (tmp_path / "bench_decode.json").write_text(json.dumps({"rows": [decode]}))
    steps = [{"name": n, "status": "ok", "seconds": 1.0, "figures": gpu_check.figures(n, tmp_path)}
             for n in ("kernels", "attention", "train", "decode")]  # fmt: skip
    assert steps[0]["figures"] == {"tests": 12, "failures": 1, "errors": 0, "skipped": 2}
    assert steps[2]["figures"]["updates"] == 950 and steps[2]["figures"]["dev_bleu"] == 7.5
    table = gpu_check.markdown({"environment": {"gpu": "NVIDIA H100"}, "dry_run": False, "steps": steps})
    assert "GPU check on NVIDIA H100" in table and "12 tests, 1 failures" in table
    assert "950 updates, 81,234 tokens/s, dev BLEU 7.5, precision: auto -> bf16 (cuda with bf16)" in table
    assert "| 128 | triton | causal | 0.050 | 0.200 | 1.0 | 3.0 |" in table
    assert "| 128 | fa2 | causal | not installed |" in table
    assert "| Transformer | beam 5 | on | 500 | 120.0 | 3000 |" in table
    assert gpu_check.figures("train", tmp_path / "nowhere")["missing"].startswith("FileNotFoundError")


def test_without_a_gpu_it_refuses_unless_dry_run(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit) as e:
        gpu_check.main(["--out", str(tmp_path)])
    assert e.value.code == 2 and "no CUDA device" in capsys.readouterr().err
    assert gpu_check.main(["--dry-run", "--only", "train", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [s["name"] for s in report["steps"]] == ["train"] and report["steps"][0]["status"].startswith("ok")
    assert "dry run, nothing measured" in (tmp_path / "gpu_check.md").read_text()
