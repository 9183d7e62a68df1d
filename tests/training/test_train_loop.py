"""The loop in-process on the smoke preset: checkpoints, exact resume, NaN guard, signals, accumulation."""

import contextlib
import json
import math
import os
import re
import signal

import pytest
import torch
from omegaconf import OmegaConf

from translate.data.batching import TokenBatchSampler, example_lengths
from translate.data.pipeline import prepare_data
from translate.models.checkpoint import CheckpointError, CheckpointManager, load_model
from translate.training import step as step_module
from translate.training.errors import TrainingError
from translate.training.loop import train
from translate.training.validate import dev_subset, validate

PAYLOAD_KEYS = {"model", "model_config", "tokenizer", "config", "step", "epoch", "best_bleu", "train_state",
                "optimizer", "scheduler", "scaler", "rng", "metrics"}  # fmt: skip


def test_smoke_run_writes_checkpoints_that_load_weights_only(smoke_cfg, tmp_path):
    cfg = smoke_cfg("trainer.max_steps=6", "trainer.val_every_steps=3", "trainer.keep_last=1")
    result = train(cfg, tmp_path)
    assert result.steps == 6 and result.stop_reason == "max_steps=6"
    assert len(result.losses) == 6 and all(math.isfinite(loss) for _, loss in result.losses)
    ckdir = tmp_path / "checkpoints"
    assert sorted(p.name for p in ckdir.iterdir()) == ["best.pt", "last.pt", "step-6.pt"]  # keep_last=1
    ckpt = torch.load(ckdir / "last.pt", map_location="cpu", weights_only=True)  # no pickled objects
    assert PAYLOAD_KEYS <= set(ckpt)
    assert ckpt["step"] == 6 and ckpt["config"]["trainer"]["max_steps"] == 6
    assert ckpt["model_config"]["_target_"] == "translate.models.transformer.Transformer"
    assert set(ckpt["rng"]) >= {"torch", "python", "numpy"}
    assert (tmp_path / "config.yaml").read_text().count("max_steps: 6") == 1
    assert any((tmp_path / "tb").iterdir())
    # the validations: logged at steps 3 and 6; the checkpoint holds the last one's scores and the best
    logged = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    dev = [r for r in logged if r["group"] == "dev"]
    assert [r["step"] for r in dev] == [3, 6]
    assert [r["step"] for r in logged if r["group"] == "train"] == [1, 2, 3, 4, 5, 6]  # log_every=1
    metrics = ckpt["metrics"]
    assert (metrics["dev_loss"], metrics["dev_bleu"]) == (dev[1]["loss"], dev[1]["bleu"])
    assert metrics["dev_bleu_signature"].startswith("nrefs:1")
    best = max(dev, key=lambda r: r["bleu"])  # the first of equals, as a new best must be strictly better
    assert ckpt["train_state"]["best_step"] == best["step"] == result.best_step
    assert ckpt["best_bleu"] == best["bleu"] == result.best_bleu
    # a checkpoint alone rebuilds the model and tokenizer (translate / evaluate need nothing else), and its
    # dev scores are those of its weights
    model, tokenizer, _ = load_model(ckdir / "last.pt")
    assert model.tgt_vocab_size == tokenizer.tgt_vocab_size
    data = prepare_data(cfg.data, cache_dir=cfg.cache_dir, splits=("dev",), tokenizer=tokenizer)
    search = OmegaConf.to_object(cfg.trainer.val_search)
    dev = dev_subset(data.datasets["dev"], cfg.trainer.val_subset)
    again = validate(model, tokenizer, dev, search, autocast=contextlib.nullcontext)
    assert again["loss"] == pytest.approx(metrics["dev_loss"], rel=1e-5)
    assert again["bleu"] == metrics["dev_bleu"]


def batches_per_epoch(cfg) -> int:
    data = prepare_data(cfg.data, cache_dir=cfg.cache_dir, splits=("train",))
    lengths = example_lengths(data.datasets["train"])
    return len(TokenBatchSampler(lengths, cfg.trainer.max_tokens, shuffle=True, seed=cfg.seed))


def test_interrupted_then_resumed_run_logs_the_same_losses(smoke_cfg, tmp_path):
    """Dropout is on in the smoke model: equal losses need the RNG states and the data position restored."""
    common = ["trainer.val_every_steps=3", "trainer.max_tokens=4000"]
    per_epoch = batches_per_epoch(smoke_cfg(*common))
    split, end = per_epoch - 1, per_epoch + 2  # the resumed part crosses an epoch boundary
    full = train(smoke_cfg(f"trainer.max_steps={end}", *common), tmp_path / "full")
    first = train(smoke_cfg(f"trainer.max_steps={split}", *common), tmp_path / "split")
    second = train(smoke_cfg(f"trainer.max_steps={end}", "trainer.resume=true", *common), tmp_path / "split")
    assert [s for s, _ in first.losses] == list(range(1, split + 1))
    assert [s for s, _ in second.losses] == list(range(split + 1, end + 1))
    assert first.losses + second.losses == full.losses  # bit-for-bit on the CPU
    assert first.epoch == 0 and second.epoch == full.epoch == 1
    a = torch.load(tmp_path / "full/checkpoints/last.pt", weights_only=True)
    b = torch.load(tmp_path / "split/checkpoints/last.pt", weights_only=True)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_a_checkpoint_without_train_state_is_refused_by_name(smoke_cfg, tmp_path):
    """Every checkpoint since 0.1.0 holds train_state; one without it cannot resume (and says so)."""
    train(smoke_cfg("trainer.max_steps=2"), tmp_path)
    path = tmp_path / "checkpoints/last.pt"
    ckpt = torch.load(path, weights_only=True)
    del ckpt["train_state"]
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="last.pt: cannot resume, checkpoint lacks train_state"):
        train(smoke_cfg("trainer.max_steps=4", "trainer.resume=true"), tmp_path)


def test_resume_without_checkpoint_names_the_file(smoke_cfg, tmp_path):
    with pytest.raises(CheckpointError, match="last.pt: no checkpoint to resume from"):
        train(smoke_cfg("trainer.resume=true"), tmp_path)
    with pytest.raises(CheckpointError, match="nowhere.pt"):
        train(smoke_cfg(f"trainer.resume_from={tmp_path}/nowhere.pt"), tmp_path)


def test_resume_auto_starts_fresh_then_resumes_and_says_which(smoke_cfg, tmp_path, capsys):
    """One command for a preemptible job's first start and every restart."""
    from translate.models.checkpoint import resume_path

    with pytest.raises(CheckpointError, match="trainer.resume must be true, false or auto, got 'yes'"):
        resume_path("yes", None, tmp_path)
    common = ["trainer.resume=auto", "trainer.val_every_steps=0", "trainer.max_tokens=4000"]
    first = train(smoke_cfg("trainer.max_steps=2", *common), tmp_path)
    assert [s for s, _ in first.losses] == [1, 2]
    assert "trainer.resume=auto: no checkpoints/last.pt yet, started fresh" in capsys.readouterr().err
    assert resume_path("auto", None, tmp_path) == tmp_path / "checkpoints" / "last.pt"
    second = train(smoke_cfg("trainer.max_steps=3", *common), tmp_path)
    assert [s for s, _ in second.losses] == [3]
    err = capsys.readouterr().err
    assert f"resumed from {tmp_path / 'checkpoints' / 'last.pt'} at step 2" in err
    assert "started fresh" not in err


def test_non_finite_losses_skip_updates_then_stop_the_run(smoke_cfg, tmp_path, monkeypatch):
    real = step_module.label_smoothed_loss
    calls = {"n": 0}

    def sometimes_nan(logits, target, smoothing):
        calls["n"] += 1
        loss, nll = real(logits, target, smoothing)
        return (loss * math.nan if calls["n"] in (2, 4, 5, 6) else loss), nll

    monkeypatch.setattr(step_module, "label_smoothed_loss", sometimes_nan)
    with pytest.warns(RuntimeWarning, match="update skipped"):
        with pytest.raises(TrainingError, match="NaN/inf for 3 steps in a row"):
            train(
                smoke_cfg("trainer.max_bad_steps=3", "trainer.max_steps=50", "trainer.val_every_steps=0"),
                tmp_path,
            )
    assert calls["n"] == 6  # batch 2 skipped alone (run went on), 4-6 in a row stopped it


def test_sigterm_saves_a_checkpoint_and_stops(smoke_cfg, tmp_path, monkeypatch):
    """Send SIGTERM to ourselves in the middle of step 3: the step completes, last.pt is written, run ends."""
    real = step_module.label_smoothed_loss
    calls = {"n": 0}

    def loss_then_signal(logits, target, smoothing):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(logits, target, smoothing)

    monkeypatch.setattr(step_module, "label_smoothed_loss", loss_then_signal)
    result = train(smoke_cfg("trainer.max_steps=50", "trainer.val_every_steps=0"), tmp_path)
    assert result.stop_reason == "SIGTERM" and result.signum == signal.SIGTERM
    assert result.steps == 3
    ckpt = torch.load(tmp_path / "checkpoints/last.pt", weights_only=True)
    assert ckpt["step"] == 3 and ckpt["train_state"] == {
        "step": 3, "epoch": 0, "batch_in_epoch": 3, "best_bleu": -1.0, "best_step": 0, "bad_validations": 0
    }
    assert signal.getsignal(signal.SIGTERM) is not None  # handler restored (not ours)
    assert not (tmp_path / "checkpoints/best.pt").exists()


def test_gradient_accumulation_counts_micro_batches(smoke_cfg, tmp_path):
    result = train(
        smoke_cfg("trainer.max_steps=3", "trainer.accum_steps=2", "trainer.val_every_steps=0"), tmp_path
    )
    ckpt = torch.load(tmp_path / "checkpoints/last.pt", weights_only=True)
    assert result.steps == 3 and ckpt["train_state"]["batch_in_epoch"] == 6
    assert ckpt["scheduler"]["last_epoch"] == 3


def test_keep_last_prunes_old_step_files(tmp_path):
    m = CheckpointManager(tmp_path, keep_last=2)
    for step in (1, 2, 3):
        m.save({"step": step, "w": torch.full((2,), float(step))}, is_best=step == 2)
    assert [p.name for p in m.step_files()] == ["step-2.pt", "step-3.pt"]
    assert torch.load(m.last, weights_only=True)["step"] == 3
    assert torch.load(m.best, weights_only=True)["step"] == 2


def test_early_stopping_with_time_based_validation(smoke_cfg, tmp_path):
    """lr 0: dev BLEU can never improve, so with patience 1 the second validation stops the run."""
    cfg = smoke_cfg("optimizer.lr=0.0", "trainer.patience=1", "trainer.val_every_steps=0",
                    "trainer.val_every_time=0.001", "trainer.max_steps=50")  # fmt: skip
    result = train(cfg, tmp_path)
    assert result.stop_reason == "early stopping (patience 1)"
    assert result.steps == 2 and result.best_step == 1
    assert torch.load(tmp_path / "checkpoints/best.pt", weights_only=True)["step"] == 1


def test_out_of_memory_suggests_a_smaller_token_budget(smoke_cfg, tmp_path, monkeypatch):
    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(step_module, "label_smoothed_loss", oom)
    with pytest.raises(TrainingError, match=r"out of memory .* trainer.max_tokens=200 trainer.accum_steps=2"):
        train(smoke_cfg("trainer.max_tokens=400"), tmp_path)


def test_fp16_needs_cuda():
    from translate.training.precision import autocast_for, resolve_precision

    with pytest.raises(TrainingError, match="fp16 needs CUDA"):
        resolve_precision("fp16", torch.device("cpu"), torch.nn.Linear(2, 2))
    with pytest.raises(TrainingError, match=re.escape("choose auto | fp32 | bf16 | fp16")):
        resolve_precision("int8", torch.device("cpu"), torch.nn.Linear(2, 2))
    with pytest.raises(TrainingError, match="resolve it first"):
        autocast_for("auto", torch.device("cpu"))


def test_the_measured_backend_reaches_inference_on_this_machine(smoke_cfg, tmp_path):
    """The smoke run (fp32, attention_backend auto, CPU) measures math against sdpa, records the verdict in
    its checkpoint, and the torch engine pins it on every attention module it loads."""
    from translate.attention.backend import machine_id
    from translate.engines import load_engine

    train(smoke_cfg("trainer.max_steps=1", "device=cpu"), tmp_path)
    ckpt = torch.load(tmp_path / "checkpoints/last.pt", weights_only=True)
    verdict = ckpt["attention_backend"]
    assert verdict["backend"] in ("math", "sdpa") and verdict["machine"] == machine_id()
    assert verdict["precision"] == "fp32" and ckpt["model_config"]["attention_backend"] == "auto"
    engine = load_engine("torch", tmp_path / "checkpoints/last.pt")
    backends = {m.backend for m in engine.model.modules() if isinstance(getattr(m, "backend", None), str)}
    assert backends == {verdict["backend"]} and engine.backend.startswith(verdict["backend"])
