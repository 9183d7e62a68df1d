"""`python -m translate.train` as a user runs it: errors, SIGTERM, -m sweeps, torchrun with 2 CPU ranks."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from translate import allocator

ROOT = Path(__file__).resolve().parents[2]


def run_env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", HYDRA_FULL_ERROR="0")
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    return env


def smoke_args(run_dir, cache_dir, *extra) -> list[str]:
    return ["experiment=smoke", "device=cpu", f"hydra.run.dir={run_dir}", f"cache_dir={cache_dir}",
            "trainer.val_subset=4", "trainer.val_search.max_len_a=0.5", "trainer.val_search.max_len_b=2",
            *extra]  # fmt: skip


def test_missing_corpus_is_one_line_and_exit_code_2(tmp_path, cache_dir):
    args = smoke_args(tmp_path / "run", cache_dir, f"data.path={tmp_path}/no_such_corpus")
    p = subprocess.run([sys.executable, "-m", "translate.train", *args], cwd=ROOT, env=run_env(),
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert p.returncode == 2
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no_such_corpus" in errors[0]
    assert "Traceback" not in p.stderr


def test_sigterm_from_outside_saves_last_checkpoint(tmp_path, cache_dir):
    run_dir = tmp_path / "run"
    args = smoke_args(run_dir, cache_dir, "trainer.max_steps=100000", "trainer.max_time=3m",
                      "trainer.val_every_steps=0", "trainer.max_tokens=200")  # fmt: skip
    p = subprocess.Popen([sys.executable, "-m", "translate.train", *args], cwd=ROOT, env=run_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    log = run_dir / "train_log.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and p.poll() is None:
        if log.exists() and sum(1 for line in log.read_text().splitlines() if '"train"' in line) >= 2:
            break
        time.sleep(0.2)
    assert p.poll() is None, p.stderr.read()[-2000:]
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "done (SIGTERM)" in out
    ckpt = torch.load(run_dir / "checkpoints/last.pt", weights_only=True)
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert ckpt["step"] >= 2 and ckpt["step"] == max(r["step"] for r in logged if r["group"] == "train")


def test_multirun_sweep_writes_one_run_dir_per_job(tmp_path, cache_dir):
    sweep = tmp_path / "sweep"
    jobs = smoke_args(tmp_path / "unused", cache_dir, "trainer.max_steps=1,2", "trainer.val_every_steps=0")
    args = ["-m", *jobs, f"hydra.sweep.dir={sweep}"]
    p = subprocess.run([sys.executable, "-m", "translate.train", *args], cwd=ROOT, env=run_env(),
                       capture_output=True, text=True, timeout=180)  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    for job, steps in (("0", 1), ("1", 2)):
        assert torch.load(sweep / job / "checkpoints/last.pt", weights_only=True)["step"] == steps
        assert (sweep / job / "config.yaml").is_file() and (sweep / job / ".hydra/overrides.yaml").is_file()


def test_torchrun_two_cpu_ranks(tmp_path, cache_dir):
    """gloo DDP: both ranks train on their own shard; only rank 0 writes the run directory."""
    run_dir = tmp_path / "ddp"
    args = smoke_args(run_dir, cache_dir, "trainer.max_steps=3", "trainer.val_every_steps=3")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "translate.train", *args]  # fmt: skip
    p = subprocess.run(cmd, cwd=ROOT, env=run_env(), capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr[-3000:]
    summary = [line for line in p.stdout.splitlines() if line.startswith("done")]
    assert len(summary) == 1, p.stdout  # printed by rank 0 only
    assert "on 2 ranks" in summary[0]
    per_rank = summary[0].split("target tokens per rank: ")[1].split(")")[0].replace(",", "").split()
    assert len(per_rank) == 2 and all(float(n) > 0 for n in per_rank)
    ckpt = torch.load(run_dir / "checkpoints/last.pt", weights_only=True)
    assert ckpt["step"] == 3 and ckpt["metrics"]["world_size"] == 2
    assert ckpt["train_state"]["batch_in_epoch"] == 3  # each rank consumed 3 of its own batches


def train_losses(run_dir) -> dict[int, float]:
    records = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records if r["group"] == "train"}


def test_kill_9_then_resume_logs_the_uninterrupted_losses_under_the_default_allocator(tmp_path, cache_dir):
    """The entry point as `make train` runs it (mimalloc preloaded, translate/allocator.py): a run killed with
    SIGKILL, resumed from its last checkpoint in a new run directory, logs an uninterrupted run's losses bit
    for bit, and both say which allocator they ran on."""
    common = ["trainer.val_every_steps=3", "trainer.max_tokens=200", "trainer.val_subset=2"]
    full = subprocess.run([sys.executable, "-m", "translate.train",
                           *smoke_args(tmp_path / "full", cache_dir, "trainer.max_steps=9", *common)],
                          cwd=ROOT, env=run_env(), capture_output=True, text=True, timeout=180)  # fmt: skip
    assert full.returncode == 0, full.stderr[-2000:]
    allocator_lines = [line.strip() for line in full.stderr.splitlines() if "allocator:" in line]
    assert len(allocator_lines) == 1, allocator_lines  # logged once
    if allocator.library_path() is not None:  # Linux x86_64 / aarch64: the package's wheel is installed
        assert allocator_lines[0].endswith("allocator: mimalloc (purge delay off)"), allocator_lines
    killed_dir = tmp_path / "killed"
    args = smoke_args(killed_dir, cache_dir, "trainer.max_steps=100000", *common)
    p = subprocess.Popen([sys.executable, "-m", "translate.train", *args], cwd=ROOT, env=run_env(),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    last = killed_dir / "checkpoints/last.pt"  # written atomically: once it exists, it is whole
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and p.poll() is None and not last.exists():
        time.sleep(0.05)
    p.kill()  # SIGKILL: nothing is saved on the way out
    _, err = p.communicate(timeout=60)
    assert p.returncode == -signal.SIGKILL, err[-2000:]
    step = torch.load(last, weights_only=True)["step"]
    assert step in (3, 6), step
    resumed_dir = tmp_path / "resumed"
    args = smoke_args(resumed_dir, cache_dir, "trainer.max_steps=9", f"trainer.resume_from={last}", *common)
    resumed = subprocess.run([sys.executable, "-m", "translate.train", *args], cwd=ROOT, env=run_env(),
                             capture_output=True, text=True, timeout=180)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resumed from {last} at step {step}" in resumed.stderr
    assert [line.strip() for line in resumed.stderr.splitlines() if "allocator:" in line] == allocator_lines
    uninterrupted = train_losses(tmp_path / "full")
    assert sorted(uninterrupted) == list(range(1, 10))
    assert train_losses(resumed_dir) == {s: loss for s, loss in uninterrupted.items() if s > step}
    a = torch.load(tmp_path / "full/checkpoints/last.pt", weights_only=True)["model"]
    b = torch.load(resumed_dir / "checkpoints/last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
