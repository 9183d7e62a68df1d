"""Everything the training loop needs, built once: devices, data, model, optimizer, schedule, precision,
attention backend, the resumed state, the logger; and the checkpoint a later set-up resumes from.
trainer.init_from starts a new run from another checkpoint's weights, model config and tokenizer (a model
imported with `translate import marian`, or any trained one): its checkpoints then resume like any run's.

Exact resume: a checkpoint holds the weights, the optimizer, schedule and grad-scaler states, every RNG state
and the TrainState (data position, best dev BLEU). Batches depend only on (seed, epoch) and validation leaves
the RNGs alone, so on the CPU a run resumed with trainer.resume=true logs the losses of an uninterrupted one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import datasets
import pyarrow.compute as pc
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from translate import allocator
from translate.attention.backend import machine_id
from translate.data.batching import TokenBatchSampler, example_lengths
from translate.data.pipeline import prepare_data
from translate.data.tokenizer import Tokenizer
from translate.files import write_text
from translate.models.build import build_model
from translate.models.checkpoint import CheckpointManager, load_for_init, load_for_resume, resume_path
from translate.models.interface import Seq2Seq
from translate.training import distributed
from translate.training.backend_choice import choose_attention_backend
from translate.training.budget import Budget, parse_duration
from translate.training.flops import Peak, matmul_peak
from translate.training.optim import ReduceOnPlateau
from translate.training.precision import autocast_for, cpu_threads_note, resolve_precision
from translate.training.progress import RunLogger
from translate.training.rng import rng_state, seed_everything, set_rng_state
from translate.training.train_state import TrainState
from translate.training.validate import dev_subset

log = logging.getLogger(__name__)


@dataclass
class Run:
    """What set_up builds for the loop. `model` is what checkpoints save; `train_model` is the same module,
    wrapped by DistributedDataParallel and/or torch.compile."""

    cfg: DictConfig  # cfg.trainer.precision holds the resolved precision
    info: distributed.DistInfo
    model: torch.nn.Module
    train_model: torch.nn.Module
    model_cfg: dict
    tokenizer: Tokenizer
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | ReduceOnPlateau
    scaler: torch.amp.GradScaler
    autocast: Callable  # () -> the precision's autocast context
    train_set: datasets.Dataset
    dev_set: datasets.Dataset
    batches_per_epoch: int  # this rank's micro-batches per epoch (equal on every rank)
    val_every_s: float  # trainer.val_every_time in seconds (0: not by time)
    budget: Budget
    ckpts: CheckpointManager
    logger: RunLogger
    state: TrainState
    flops_per_token: float = 0.0  # forward + backward FLOPs per target token (the model's count); 0: none
    peak: Peak | None = None  # the matmul peak measured at the model's shapes (CPU Transformer runs)
    backend_verdict: dict | None = None  # the measured attention backend, saved for inference (backend.py)


def set_up(cfg: DictConfig, run_dir: Path, info: distributed.DistInfo, start: float) -> Run:
    """Build the run; resume it when trainer.resume / trainer.resume_from say so. `start`: the run's
    time.monotonic() start, which max_time counts from."""
    trainer = cfg.trainer
    run_dir = Path(distributed.broadcast_object(info, str(run_dir)))  # torchrun: rank 0's directory for all
    device = info.device
    ckpts = CheckpointManager(run_dir / "checkpoints", keep_last=trainer.keep_last)
    # the budgets and the validation clock: their options are checked before any work
    budget = Budget(trainer.max_steps, trainer.max_epochs, trainer.max_time, start=start)
    val_every_s = parse_duration(trainer.val_every_time)

    # ---- resume? (read before anything else: the tokenizer comes from the checkpoint)
    resume_file = resume_path(trainer.resume, trainer.resume_from, run_dir)
    fresh_auto = trainer.resume == "auto" and resume_file is None
    ckpt = load_for_resume(resume_file) if resume_file else None
    init = load_for_init(trainer.init_from) if trainer.init_from and ckpt is None else None
    seed_everything(cfg.seed)

    # ---- data: rank 0 trains/caches the tokenizer and encodes; the other ranks then read the cache
    source = ckpt if ckpt is not None else init  # a resumed or initialised run keeps that tokenizer
    tokenizer = Tokenizer.from_state_dict(source["tokenizer"]) if source is not None else None
    if not info.is_main:
        distributed.barrier(info)
    data = prepare_data(cfg.data, cache_dir=cfg.cache_dir, splits=("train", "dev"), tokenizer=tokenizer)
    if info.is_main:
        distributed.barrier(info)
    tokenizer = data.tokenizer
    train_set, dev_set = data.datasets["train"], dev_subset(data.datasets["dev"], trainer.val_subset)
    lengths = example_lengths(train_set)
    batches_per_epoch = len(
        TokenBatchSampler(lengths, trainer.max_tokens, True, cfg.seed, info.world_size, info.rank)
    )
    budget.steps_per_epoch = math.ceil(batches_per_epoch / trainer.accum_steps)  # updates, for the ETA

    # ---- model, optimizer, schedule, grad scaler (a resumed run rebuilds the checkpoint's model)
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    if source is not None and source["model_config"] != model_cfg:
        what = "resuming" if ckpt is not None else f"starting from {trainer.init_from}"
        log.warning("%s with the checkpoint's model config; the given model config is ignored", what)
        model_cfg = dict(source["model_config"])
    model = build_model(model_cfg, tokenizer.src_vocab_size, tokenizer.tgt_vocab_size, tokenizer.shared_vocab)
    if init is not None:
        model.load_state_dict(init["model"])
    model.to(device)
    optimizer = instantiate(cfg.optimizer)(model.parameters())
    scheduler = instantiate(cfg.scheduler)(optimizer)
    # ---- precision and attention backend: chosen by what this machine runs fast (logged with the reason)
    requested = trainer.precision
    trainer.precision, precision_reason = resolve_precision(requested, device, model)  # saved as resolved
    autocast = autocast_for(trainer.precision, device)
    backend, backend_reason, verdict = attention_backend(model, model_cfg, trainer, autocast, device,
                                                         Path(cfg.cache_dir))  # fmt: skip
    scaler = torch.amp.GradScaler(device.type, enabled=trainer.precision == "fp16")
    flops_per_token, peak, not_counted = utilisation_basis(model, train_set, trainer, device)

    state = restore(ckpt, model, optimizer, scheduler, scaler) if ckpt is not None else TrainState()
    train_model = wrap(model, info, trainer.compile)

    # ---- the run directory (rank 0) and the first lines of the log
    config_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text(run_dir / "config.yaml", config_yaml)
    logger = RunLogger(run_dir, trainer.max_steps or None, state.step, enabled=info.is_main)
    logger.config_text(config_yaml)
    logger.message(f"precision: {requested} -> {trainer.precision} ({precision_reason})")
    if backend:
        logger.message(f"attention backend: auto -> {backend} ({backend_reason})")
    if device.type == "cpu":
        logger.message(f"threads: {cpu_threads_note()}")
    logger.message(f"allocator: {allocator.describe()}")
    if peak is not None:
        logger.message(f"FLOPs: {flops_per_token / 1e6:.3g} MFLOP per target token (at the corpus' mean "
                       f"lengths); matmul peak {peak.describe()}")  # fmt: skip
    elif not_counted:
        logger.message(f"FLOPs: {not_counted}")
    logger.message(
        f"{model.describe()}; {len(train_set):,} training pairs, {budget.steps_per_epoch} steps/epoch on "
        f"{info.world_size} x {device}, precision {trainer.precision}"
        + (f"; resumed from {resume_file} at step {state.step}" if resume_file else "")
        + (f"; weights, model config and tokenizer from {trainer.init_from}" if init is not None else "")
        + ("; trainer.resume=auto: no checkpoints/last.pt yet, started fresh" if fresh_auto else "")
    )
    return Run(
        cfg=cfg, info=info, model=model, train_model=train_model, model_cfg=model_cfg, tokenizer=tokenizer,
        optimizer=optimizer, scheduler=scheduler, scaler=scaler, autocast=autocast, train_set=train_set,
        dev_set=dev_set, batches_per_epoch=batches_per_epoch, val_every_s=val_every_s, budget=budget,
        ckpts=ckpts, logger=logger, state=state, flops_per_token=flops_per_token, peak=peak,
        backend_verdict=verdict,
    )  # fmt: skip


def attention_backend(model, model_cfg: dict, trainer: DictConfig, autocast, device: torch.device,
                      cache_dir: Path) -> tuple[str, str, dict | None]:  # fmt: skip
    """model.attention_backend=auto: the backend measured fastest for this model's step on this CPU, pinned on
    the model -> (backend, reason, the verdict checkpoints record for inference); ("", "", None) otherwise."""
    if model_cfg.get("attention_backend") != "auto":
        return "", "", None
    backend, reason = choose_attention_backend(model, trainer.precision, autocast, device,
                                               trainer.max_tokens // 2, cache_dir / "attention_backend.json")
    if backend == "auto":  # not measured (CUDA, or no dot-product attention): per call
        return backend, reason, None
    return backend, reason, {"backend": backend, "machine": machine_id(), "precision": trainer.precision}


def restore(ckpt: dict, model, optimizer, scheduler, scaler) -> TrainState:
    """A resumed run: every state the checkpoint holds back in place -> the loop's TrainState."""
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    if ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    set_rng_state(ckpt["rng"])
    return TrainState.from_checkpoint(ckpt)


def wrap(model: torch.nn.Module, info: distributed.DistInfo, compile: bool) -> torch.nn.Module:
    """What the loop trains: DistributedDataParallel and/or torch.compile around the same module (checkpoints
    always save `model` itself)."""
    train_model = model
    if info.enabled:
        device = info.device
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    return torch.compile(train_model) if compile else train_model


def utilisation_basis(model: Seq2Seq, train_set: datasets.Dataset, trainer: DictConfig,
                      device: torch.device) -> tuple[float, Peak | None, str]:  # fmt: skip
    """(FLOPs per target token at the corpus' mean lengths, the matmul peak at the model's shapes, "") as the
    model declares them (Seq2Seq.flops_per_target_token, linear_shapes), on the CPU; (0, None, why) for a
    model that declares no count; (0, None, "") on another device or without data. The peak takes ~1 s."""
    if device.type != "cpu":
        return 0.0, None, ""
    shapes = model.linear_shapes()
    if shapes is None or model.flops_per_target_token(1, 1) is None:
        return 0.0, None, (f"not counted: {type(model).__name__} declares no flops_per_target_token / "
                           "linear_shapes (Seq2Seq's None), so no utilisation is logged")  # fmt: skip
    if len(train_set) == 0:
        return 0.0, None, ""
    table = train_set.with_format("arrow")[:]
    src_len = pc.mean(pc.list_value_length(table.column("src_ids"))).as_py() + 1  # + EOS
    tgt_len = pc.mean(pc.list_value_length(table.column("tgt_ids"))).as_py() + 1  # + EOS: tgt_out's tokens
    flops = model.flops_per_target_token(src_len, tgt_len)
    peak = matmul_peak(shapes, trainer.precision, rows=trainer.max_tokens, repeats=2)
    return flops, peak, ""


def write_checkpoint(run: Run, is_best: bool, metrics: dict) -> None:
    """Rank 0 writes last.pt (+ step-N.pt, best.pt): what set_up reads back to resume, all weights_only-safe.

    step, epoch and best_bleu are repeated at the top for the readers (evaluation, the engines, averaging).
    """
    if not run.info.is_main:
        return
    state = run.state
    run.ckpts.save(
        {
            "model": run.model.state_dict(),
            "model_config": run.model_cfg,
            "tokenizer": run.tokenizer.state_dict(),
            "config": OmegaConf.to_container(run.cfg, resolve=True),
            "step": state.step,
            "epoch": state.epoch,
            "best_bleu": state.best_bleu,
            "train_state": state.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "scaler": run.scaler.state_dict(),
            "rng": rng_state(),
            "metrics": {"world_size": run.info.world_size, **metrics},
            **({"attention_backend": run.backend_verdict} if run.backend_verdict else {}),
        },
        is_best,
    )
