"""The training loop: one function, read top to bottom, no callbacks.

set-up (devices, data, model, optimizer, schedule, resume) -> loop over optimizer steps (micro-batches with
gradient accumulation, clipping, mixed precision, NaN guard) -> validation and checkpoints -> summary.

Legend: B batch, S source length, T target length, V target vocabulary.

Exact resume: a checkpoint holds the data position (epoch, batches consumed in it) and every RNG state;
batches depend only on (seed, epoch), and validation restores the RNG states it touches. So on the CPU, an
interrupted run resumed with trainer.resume=true logs the same losses as an uninterrupted one
(tests/training/test_resume.py).
"""

import contextlib
import logging
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from translate.data.batching import TokenBatchSampler, example_lengths, make_batches
from translate.data.pipeline import prepare_data
from translate.data.tokenizer import Tokenizer
from translate.models.build import build_model
from translate.training import distributed
from translate.training.backend_choice import choose_attention_backend
from translate.training.budget import Budget, format_seconds, parse_duration
from translate.training.errors import TrainingError
from translate.training.loss import label_smoothed_loss
from translate.training.precision import autocast_for, cpu_threads_note, resolve_precision
from translate.training.progress import RunLogger
from translate.training.signals import StopOnSignal
from translate.training.state import (
    CheckpointManager,
    load_for_resume,
    resume_path,
    rng_state,
    seed_everything,
    set_rng_state,
)
from translate.training.validate import dev_subset, validate

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a run did; train.py prints `summary`, tests read the rest."""

    steps: int
    epoch: int
    seconds: float
    stop_reason: str
    best_bleu: float
    best_step: int
    checkpoint_dir: Path
    world_size: int
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, train loss per token) this run
    tokens_per_rank: list[float] = field(default_factory=list)
    signum: int = 0

    @property
    def summary(self) -> str:
        best = (
            f"best dev BLEU {self.best_bleu:.2f} at step {self.best_step}"
            if self.best_step
            else "no validation"
        )
        ranks = ""
        if self.world_size > 1:
            per_rank = ", ".join(f"{n:,.0f}" for n in self.tokens_per_rank)
            ranks = f" on {self.world_size} ranks (target tokens per rank: {per_rank})"
        return (
            f"done ({self.stop_reason}): {self.steps} steps, {self.epoch} epochs, "
            f"{format_seconds(self.seconds)}{ranks}, {best}; checkpoints in {self.checkpoint_dir}"
        )


def is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.OutOfMemoryError) or (
        isinstance(e, RuntimeError) and "out of memory" in str(e)
    )


def train(cfg: DictConfig, run_dir: str | Path) -> TrainResult:
    """Train `cfg.model` on `cfg.data` with `cfg.trainer`; rank 0 writes everything under run_dir."""
    start = time.monotonic()  # max_time counts set-up (data, tokenizer) too
    info = distributed.setup(cfg.device)
    try:
        return _train(cfg, Path(run_dir), info, start)
    finally:
        distributed.teardown(info)


def _train(cfg: DictConfig, run_dir: Path, info: distributed.DistInfo, start: float) -> TrainResult:
    t = cfg.trainer
    run_dir = Path(distributed.broadcast_object(info, str(run_dir)))  # torchrun: rank 0's directory for all
    device = info.device
    ckpts = CheckpointManager(run_dir / "checkpoints", keep_last=t.keep_last)
    budget = Budget(t.max_steps, t.max_epochs, t.max_time, start=start)  # checks the options before any work
    val_every_s = parse_duration(t.val_every_time)

    # ---- resume? (read before anything else: the tokenizer comes from the checkpoint)
    resume_file = resume_path(t.resume, t.resume_from, run_dir)
    fresh_auto = t.resume == "auto" and resume_file is None
    ckpt = load_for_resume(resume_file) if resume_file else None
    seed_everything(cfg.seed)

    # ---- data: rank 0 trains/caches the tokenizer and encodes; the other ranks then read the cache
    tokenizer = Tokenizer.from_state_dict(ckpt["tokenizer"]) if ckpt is not None else None
    if not info.is_main:
        distributed.barrier(info)
    data = prepare_data(cfg.data, cache_dir=cfg.cache_dir, splits=("train", "dev"), tokenizer=tokenizer)
    if info.is_main:
        distributed.barrier(info)
    tokenizer = data.tokenizer
    train_set, dev_set = data.datasets["train"], dev_subset(data.datasets["dev"], t.val_subset)
    batches_per_epoch = len(
        TokenBatchSampler(
            example_lengths(train_set), t.max_tokens, True, cfg.seed, info.world_size, info.rank
        )
    )  # this rank's micro-batches per epoch (equal on every rank)
    steps_per_epoch = math.ceil(batches_per_epoch / t.accum_steps)

    # ---- model, optimizer, schedule, grad scaler (a resumed run rebuilds the checkpoint's model)
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    if ckpt is not None and ckpt["model_config"] != model_cfg:
        log.warning("resuming with the checkpoint's model config; the given model config is ignored")
        model_cfg = ckpt["model_config"]
    model = build_model(model_cfg, tokenizer.src_vocab_size, tokenizer.tgt_vocab_size, tokenizer.shared)
    model.to(device)
    optimizer = instantiate(cfg.optimizer)(model.parameters())
    scheduler = instantiate(cfg.scheduler)(optimizer)
    # ---- precision and attention backend: chosen by what this machine runs fast (logged with the reason)
    requested = t.precision
    t.precision, precision_reason = resolve_precision(requested, device, model)  # config.yaml gets the result
    autocast = autocast_for(t.precision, device)
    backend, backend_reason = "", ""
    if model_cfg.get("attention_backend") == "auto":
        cache_file = Path(cfg.cache_dir) / "attention_backend.json"
        backend, backend_reason = choose_attention_backend(
            model, t.precision, autocast, device, t.max_tokens // 2, cache_file
        )
    scaler = torch.amp.GradScaler(device.type, enabled=t.precision == "fp16")

    step, epoch, batch_in_epoch = 0, 0, 0
    best_bleu, best_step, bad_validations = -1.0, 0, 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        step, epoch = int(ckpt["step"]), int(ckpt["data_position"]["epoch"])
        batch_in_epoch = int(ckpt["data_position"]["batch"])
        best_bleu = float(ckpt["best_bleu"])
        best_step = int(ckpt["metrics"]["best_step"])
        bad_validations = int(ckpt["metrics"]["bad_validations"])
        set_rng_state(ckpt["rng"])

    # ---- compile and data parallel wrap the same module; checkpoints always save `model` itself
    train_model = model
    if info.enabled:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if t.compile:
        train_model = torch.compile(train_model)

    config_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(config_yaml, encoding="utf-8")
    logger = RunLogger(run_dir, t.max_steps or None, step, enabled=info.is_main)
    logger.config_text(config_yaml)
    logger.message(f"precision: {requested} -> {t.precision} ({precision_reason})")
    if backend:
        logger.message(f"attention backend: auto -> {backend} ({backend_reason})")
    if device.type == "cpu":
        logger.message(f"threads: {cpu_threads_note()}")
    logger.message(
        f"{model.describe()}; {len(train_set):,} training pairs, {steps_per_epoch} steps/epoch on "
        f"{info.world_size} x {device}, precision {t.precision}"
        + (f"; resumed from {resume_file} at step {step}" if resume_file else "")
        + ("; trainer.resume=auto: no checkpoints/last.pt yet, started fresh" if fresh_auto else "")
    )
    budget.steps_per_epoch = steps_per_epoch

    def checkpoint(is_best: bool, metrics: dict) -> None:
        """Rank 0 writes last.pt (+ step-N.pt, best.pt); the payload is all weights_only-safe."""
        if not info.is_main:
            return
        ckpts.save(
            {
                "model": model.state_dict(),
                "model_config": model_cfg,
                "tokenizer": tokenizer.state_dict(),
                "config": OmegaConf.to_container(cfg, resolve=True),
                "step": step,
                "epoch": epoch,
                "best_bleu": best_bleu,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": rng_state(),
                "data_position": {"epoch": epoch, "batch": batch_in_epoch},
                "metrics": {
                    "best_step": best_step,
                    "bad_validations": bad_validations,
                    "world_size": info.world_size,
                    **metrics,
                },
            },
            is_best,
        )

    def run_validation() -> str | None:
        """Rank 0 validates; every rank updates the best-BLEU bookkeeping alike; rank 0 logs and checkpoints.
        Returns the early-stopping reason, if it is time to stop."""
        nonlocal best_bleu, best_step, bad_validations
        scores = None
        if info.is_main:
            scores = validate(model, tokenizer, dev_set, OmegaConf.to_object(t.val_search), autocast=autocast)
        model.train()
        bleu = distributed.broadcast_object(info, scores["bleu"] if scores else None)
        is_best = bleu > best_bleu
        if is_best:
            best_bleu, best_step, bad_validations = bleu, step, 0
        else:
            bad_validations += 1
        scheduler.on_validation(bleu)
        if info.is_main:
            logger.scalars(step, "dev", {k: scores[k] for k in ("loss", "ppl", "bleu", "chrf", "seconds")})
            logger.message(
                f"step {step}: dev loss {scores['loss']:.3f}, ppl {scores['ppl']:.1f}, BLEU {bleu:.2f}, "
                f"chrF {scores['chrf']:.1f} ({scores['seconds']:.0f}s){' *best*' if is_best else ''}"
            )
            for src, hyp, ref in scores["examples"][:1]:
                logger.message(f"  src: {src}\n  hyp: {hyp}\n  ref: {ref}")
            checkpoint(is_best, {"dev_" + k: scores[k] for k in ("loss", "bleu", "chrf", "bleu_signature")})
        if t.patience > 0 and bad_validations >= t.patience:
            return f"early stopping (patience {t.patience})"
        return None

    # ---- the loop
    losses: list[tuple[int, float]] = []
    tokens_this_rank = 0.0
    bad_steps = 0  # consecutive non-finite losses
    last_val_step, last_val_time = step, time.monotonic()
    window = {"loss": 0.0, "nll": 0.0, "tokens": 0.0, "grad_norm": 0.0, "steps": 0, "start": time.monotonic()}
    bar_tokens_per_s, last_step_end = 0.0, time.monotonic()  # the bar's smoothed rate
    steps_this_run = 0
    stop_reason = budget.exhausted(step, epoch, time_up=False)
    model.train()
    with StopOnSignal() as signals:
        while stop_reason is None:
            batches = make_batches(
                train_set,
                t.max_tokens,
                shuffle=True,
                seed=cfg.seed,
                epoch=epoch,
                start_batch=batch_in_epoch,
                num_replicas=info.world_size,
                rank=info.rank,
            )
            group: list = []
            for batch in batches:
                group.append(batch)
                if len(group) < t.accum_steps and batch_in_epoch + len(group) < batches_per_epoch:
                    continue  # gradient accumulation: an update every accum_steps batches (and at epoch end)
                # -- one optimizer step over the micro-batches in `group`
                n_tokens = sum(b.n_tgt_tokens for b in group)
                (global_tokens,) = distributed.all_reduce_sum(info, [float(n_tokens)])
                # DDP averages gradients over ranks, so scale by world_size to get sum / global tokens.
                norm = info.world_size / global_tokens
                loss_sum = nll_sum = 0.0
                try:
                    for i, b in enumerate(group):
                        b = b.to(device, non_blocking=True)
                        sync = i == len(group) - 1 or not info.enabled
                        with contextlib.nullcontext() if sync else train_model.no_sync():
                            with autocast():
                                logits = train_model(b.src, b.tgt_in)  # (B, T, V)
                            loss, nll, _ = label_smoothed_loss(logits, b.tgt_out, t.label_smoothing)
                            scaler.scale(loss * norm).backward()
                        loss_sum += float(loss.detach())
                        nll_sum += float(nll)
                    scaler.unscale_(optimizer)
                    grad_norm = float(
                        torch.nn.utils.clip_grad_norm_(
                            model.parameters(), t.clip_norm if t.clip_norm > 0 else math.inf
                        )
                    )
                except Exception as e:
                    if is_oom(e):
                        raise TrainingError(
                            f"out of memory at step {step} with trainer.max_tokens={t.max_tokens}: "
                            f"use a smaller "
                            f"token budget, e.g. trainer.max_tokens={t.max_tokens // 2} "
                            f"trainer.accum_steps={2 * t.accum_steps} (same tokens per update)"
                        ) from e
                    raise
                batch_in_epoch += len(group)
                group = []
                tokens_this_rank += n_tokens
                # One reduction per step: losses for the log, the NaN verdict, and every decision driven by a
                # clock or a signal, so that all ranks take it together (their clocks differ a little).
                val_due_time = float(val_every_s > 0 and time.monotonic() - last_val_time >= val_every_s)
                g_loss, g_nll, g_signal, g_val_time, g_time_up = distributed.all_reduce_sum(
                    info,
                    [
                        loss_sum,
                        nll_sum,
                        float(signals.received is not None),
                        val_due_time,
                        float(budget.time_up()),
                    ],
                )
                finite = math.isfinite(g_loss) and (math.isfinite(grad_norm) or t.precision == "fp16")
                if finite:
                    scaler.step(optimizer)  # fp16: skips the update by itself when gradients overflowed
                    scaler.update()
                    scheduler.step()
                    step += 1
                    steps_this_run += 1
                    bad_steps = 0
                    loss_per_token = g_loss / global_tokens
                    losses.append((step, loss_per_token))
                    window["loss"] += g_loss
                    window["nll"] += g_nll
                    window["tokens"] += global_tokens
                    window["grad_norm"] += grad_norm if math.isfinite(grad_norm) else 0.0
                    window["steps"] += 1
                else:
                    bad_steps += 1
                    warnings.warn(
                        f"step {step + 1}: non-finite loss or gradient "
                        f"(loss {g_loss}, grad norm {grad_norm}); "
                        f"update skipped ({bad_steps}/{t.max_bad_steps} in a row)",
                        RuntimeWarning,
                        stacklevel=1,
                    )
                    if bad_steps >= t.max_bad_steps:
                        raise TrainingError(
                            f"loss was NaN/inf for {bad_steps} steps in a row at step {step}: "
                            f"lower optimizer.lr, "
                            f"set trainer.clip_norm, or use trainer.precision=fp32"
                        )
                optimizer.zero_grad(set_to_none=True)

                # -- progress: bar every step, TensorBoard / jsonl every log_every steps
                lr = scheduler.get_last_lr()[0]
                now = time.monotonic()
                rate = global_tokens / max(now - last_step_end, 1e-9)
                bar_tokens_per_s = rate if bar_tokens_per_s == 0.0 else 0.9 * bar_tokens_per_s + 0.1 * rate
                last_step_end = now
                if finite:
                    if window["steps"] >= t.log_every:
                        tokens_per_s = window["tokens"] / max(now - window["start"], 1e-9)
                        logger.scalars(
                            step,
                            "train",
                            {
                                "loss": window["loss"] / window["tokens"],
                                "ppl": math.exp(min(window["nll"] / window["tokens"], 50.0)),
                                "lr": lr,
                                "grad_norm": window["grad_norm"] / window["steps"],
                                "tokens_per_s": tokens_per_s,
                                "epoch": epoch + batch_in_epoch / batches_per_epoch,
                            },
                        )
                        window.update(
                            loss=0.0, nll=0.0, tokens=0.0, grad_norm=0.0, steps=0, start=time.monotonic()
                        )
                    epoch_fraction = batch_in_epoch / batches_per_epoch
                    eta = budget.eta(step, epoch, epoch_fraction, steps_this_run)
                    logger.step(step, loss_per_token, lr, bar_tokens_per_s, eta)

                # -- stop on a signal (after a complete update), validate, budgets
                if g_signal > 0:
                    stop_reason = signals.received or "signal on another rank"
                    break
                if finite and ((t.val_every_steps > 0 and step % t.val_every_steps == 0) or g_val_time > 0):
                    val_start = time.monotonic()
                    early = run_validation()
                    last_val_step, last_val_time = step, time.monotonic()
                    window["start"] += last_val_time - val_start  # tokens/s counts training time only
                    last_step_end = last_val_time
                    if early:
                        stop_reason = early
                        break
                stop_reason = budget.exhausted(step, epoch, time_up=g_time_up > 0)
                if stop_reason:
                    break
            else:  # the epoch ran out
                epoch, batch_in_epoch = epoch + 1, 0
                stop_reason = budget.exhausted(step, epoch, time_up=False)  # the clock: at the next update

        # ---- the end: a signal saves at once; otherwise validate (and save) what was not yet validated
        if signals.received is not None or stop_reason == "signal on another rank":
            checkpoint(False, {})
        elif step != last_val_step:
            if t.val_every_steps > 0 or val_every_s > 0:
                run_validation()
            else:
                checkpoint(False, {})
    logger.close()

    tokens_per_rank = [0.0] * info.world_size
    tokens_per_rank[info.rank] = tokens_this_rank
    tokens_per_rank = distributed.all_reduce_sum(info, tokens_per_rank)
    return TrainResult(
        steps=step,
        epoch=epoch,
        seconds=budget.elapsed(),
        stop_reason=stop_reason,
        best_bleu=best_bleu,
        best_step=best_step,
        checkpoint_dir=ckpts.dir,
        world_size=info.world_size,
        losses=losses,
        tokens_per_rank=tokens_per_rank,
        signum=signals.signum,
    )
