"""The training loop: set up, then optimizer updates until a budget, a signal or early stopping ends the run.

Read top to bottom: `_train` calls the named steps. set_up (setup.py) builds the data, model, optimizer,
schedule and resumed state; train_step (step.py) makes one update from a group of micro-batches;
validate_and_checkpoint (below) scores the dev set and writes the checkpoints. What must survive a restart is
in TrainState (train_state.py); exact resume is tested bit for bit (tests/training/test_train_loop.py).
"""

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from translate.data.batching import Batch, make_batches
from translate.training import distributed
from translate.training.budget import format_seconds
from translate.training.flops import share_note
from translate.training.optim import ReduceOnPlateau
from translate.training.setup import Run, set_up, write_checkpoint
from translate.training.signals import StopOnSignal
from translate.training.step import train_step
from translate.training.throughput import Throughput
from translate.training.validate import validate


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


def train(cfg: DictConfig, run_dir: str | Path) -> TrainResult:
    """Train `cfg.model` on `cfg.data` with `cfg.trainer`; rank 0 writes everything under run_dir."""
    start = time.monotonic()  # max_time counts set-up (data, tokenizer) too
    info = distributed.setup(cfg.device)
    try:
        return _train(cfg, Path(run_dir), info, start)
    finally:
        distributed.teardown(info)


def _train(cfg: DictConfig, run_dir: Path, info: distributed.DistInfo, start: float) -> TrainResult:
    run = set_up(cfg, run_dir, info, start)
    trainer, state, budget = cfg.trainer, run.state, run.budget
    losses: list[tuple[int, float]] = []  # (step, train loss per target token), this run
    tokens_this_rank, bad_steps, steps_this_run = 0, 0, 0
    last_val_step, last_val_time = state.step, time.monotonic()
    meter = Throughput()
    stop = budget.exhausted(state.step, state.epoch, time_up=False)
    run.model.train()
    with StopOnSignal() as signals:

        def poll() -> list[float]:
            """After each backward pass, summed over ranks: a signal, validation due by the clock, time up."""
            val_due = run.val_every_s > 0 and time.monotonic() - last_val_time >= run.val_every_s
            return [float(signals.received is not None), float(val_due), float(budget.time_up())]

        while stop is None:
            for group in update_groups(run, state.epoch, state.batch_in_epoch):
                out = train_step(run, group, state.step, bad_steps, poll)
                got_signal, val_due, time_up = (x > 0 for x in out.polled)
                state.batch_in_epoch += len(group)
                tokens_this_rank += out.rank_tokens
                bad_steps = 0 if out.applied else bad_steps + 1
                meter.update(out.tokens, out.applied, out.loss, out.nll, out.grad_norm)
                if out.applied:  # progress: the bar every update, TensorBoard / jsonl every log_every
                    state.step += 1
                    steps_this_run += 1
                    losses.append((state.step, out.loss_per_token))
                    lr = run.scheduler.get_last_lr()[0]
                    epoch_fraction = state.batch_in_epoch / run.batches_per_epoch
                    if meter.steps >= trainer.log_every:
                        epoch = state.epoch + epoch_fraction
                        run.logger.scalars(state.step, "train", {**meter.take(), "lr": lr, "epoch": epoch})
                    eta = budget.eta(state.step, state.epoch, epoch_fraction, steps_this_run)
                    run.logger.step(state.step, out.loss_per_token, lr, meter.bar_rate, eta)

                # stop on a signal (after a complete update), validate, budgets
                if got_signal:
                    stop = signals.received or "signal on another rank"
                    break
                every_steps = trainer.val_every_steps > 0 and state.step % trainer.val_every_steps == 0
                if out.applied and (every_steps or val_due):
                    val_start = time.monotonic()
                    stop = validate_and_checkpoint(run)
                    last_val_step, last_val_time = state.step, time.monotonic()
                    meter.pause(last_val_time - val_start)  # tokens/s counts training time only
                    if stop:
                        break
                stop = budget.exhausted(state.step, state.epoch, time_up=time_up)
                if stop:
                    break
            else:  # the epoch ran out
                state.epoch, state.batch_in_epoch = state.epoch + 1, 0
                stop = budget.exhausted(state.step, state.epoch, time_up=False)  # the clock: next update

        # the end: a signal saves at once; otherwise validate (and save) what was not yet validated
        if signals.received is not None or stop == "signal on another rank":
            write_checkpoint(run, False, {})
        elif state.step != last_val_step:
            if trainer.val_every_steps > 0 or run.val_every_s > 0:
                validate_and_checkpoint(run)
            else:
                write_checkpoint(run, False, {})
    if run.peak is not None and meter.total_seconds > 0:  # the share of this rank's measured peak reached
        rate = meter.overall_rate / info.world_size
        run.logger.message(f"utilisation: {share_note(rate, run.flops_per_token, run.peak)}")
    run.logger.close()

    tokens_per_rank = [0.0] * info.world_size
    tokens_per_rank[info.rank] = float(tokens_this_rank)
    return TrainResult(
        steps=state.step,
        epoch=state.epoch,
        seconds=budget.elapsed(),
        stop_reason=stop,
        best_bleu=state.best_bleu,
        best_step=state.best_step,
        checkpoint_dir=run.ckpts.dir,
        world_size=info.world_size,
        losses=losses,
        tokens_per_rank=distributed.all_reduce_sum(info, tokens_per_rank),
        signum=signals.signum,
    )


def update_groups(run: Run, epoch: int, start_batch: int) -> Iterator[list[Batch]]:
    """This rank's micro-batches of `epoch` from `start_batch` on, in groups of trainer.accum_steps (the
    epoch's last group may be smaller): one optimizer update each."""
    trainer = run.cfg.trainer
    batches = make_batches(
        run.train_set,
        trainer.max_tokens,
        shuffle=True,
        seed=run.cfg.seed,
        epoch=epoch,
        start_batch=start_batch,
        num_replicas=run.info.world_size,
        rank=run.info.rank,
    )
    group: list[Batch] = []
    for batch in batches:
        group.append(batch)
        if len(group) == trainer.accum_steps:
            yield group
            group = []
    if group:
        yield group


def validate_and_checkpoint(run: Run) -> str | None:
    """Rank 0 validates; every rank updates the best-BLEU bookkeeping alike; rank 0 logs and checkpoints.
    Returns the early-stopping reason, if it is time to stop."""
    trainer, state = run.cfg.trainer, run.state
    scores = None
    if run.info.is_main:
        search = OmegaConf.to_object(trainer.val_search)  # a SearchConfig (conf/train.yaml: greedy)
        scores = validate(run.model, run.tokenizer, run.dev_set, search, autocast=run.autocast)
    run.model.train()
    bleu = distributed.broadcast_object(run.info, scores["bleu"] if scores else None)
    is_best = state.record_validation(bleu)
    if isinstance(run.scheduler, ReduceOnPlateau):
        run.scheduler.on_validation(bleu)
    if run.info.is_main:
        dev = {k: scores[k] for k in ("loss", "ppl", "bleu", "chrf", "seconds")}
        run.logger.scalars(state.step, "dev", dev)
        run.logger.message(
            f"step {state.step}: dev loss {scores['loss']:.3f}, ppl {scores['ppl']:.1f}, BLEU {bleu:.2f}, "
            f"chrF {scores['chrf']:.1f} ({scores['seconds']:.0f}s){' *best*' if is_best else ''}"
        )
        for src, hyp, ref in scores["examples"][:1]:
            run.logger.message(f"  src: {src}\n  hyp: {hyp}\n  ref: {ref}")
        metrics = {"dev_" + k: scores[k] for k in ("loss", "bleu", "chrf", "bleu_signature")}
        write_checkpoint(run, is_best, metrics)
    if trainer.patience > 0 and state.bad_validations >= trainer.patience:
        return f"early stopping (patience {trainer.patience})"
    return None
