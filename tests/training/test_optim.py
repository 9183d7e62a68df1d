import io
import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from translate.training.optim import Constant, InverseSqrt, ReduceOnPlateau

CONF = Path(__file__).resolve().parents[2] / "conf"


def make_opt(lr=1.0):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def lrs(schedule, n):
    """The lr of n successive updates (as the loop sees them: read, then step after the update)."""
    out = []
    for _ in range(n):
        out.append(schedule.get_last_lr()[0])
        schedule.optimizer.step()
        schedule.step()
    return out


def weights_only_copy(state: dict) -> dict:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_inverse_sqrt_warms_up_linearly_peaks_then_decays():
    got = lrs(InverseSqrt(make_opt(2.0), warmup_steps=4), 16)
    # bit-for-bit the formula of Vaswani et al. (what the schedule computed before it was a LambdaLR)
    assert got == [2.0 * min(s / 4, math.sqrt(4 / s)) for s in range(1, 17)]
    assert got[:4] == [0.5, 1.0, 1.5, 2.0] and got[15] == 1.0  # the peak at step 4, then 2 * sqrt(4/16)


def test_inverse_sqrt_min_lr_floors_the_decay_but_not_the_warmup():
    got = lrs(InverseSqrt(make_opt(2.0), warmup_steps=4, min_lr=0.8), 40)
    assert got[:4] == [0.5, 1.0, 1.5, 2.0]  # warmup starts below min_lr: not floored
    decayed = [2.0 * math.sqrt(4 / s) for s in range(5, 41)]
    assert got[4:] == [max(lr, 0.8) for lr in decayed]
    assert got[-1] == 0.8 and decayed[-1] < 0.8  # exactly min_lr where the decay would go below


def test_constant_with_warmup():
    assert lrs(Constant(make_opt(1.0), warmup_steps=2), 5) == [0.5, 1.0, 1.0, 1.0, 1.0]
    assert lrs(Constant(make_opt(0.3)), 3) == [0.3, 0.3, 0.3]


def test_plateau_warms_up_linearly_with_min_lr_as_a_floor():
    s = ReduceOnPlateau(make_opt(2.0), warmup_steps=4, min_lr=0.6)
    assert lrs(s, 6) == [0.6, 1.0, 1.5, 2.0, 2.0, 2.0]  # 0.5 at the first step is floored to min_lr


def test_plateau_halves_after_patience_and_respects_min_lr():
    s = ReduceOnPlateau(make_opt(1.0), factor_on_plateau=0.5, patience=1, min_lr=0.3)
    s.on_validation(10.0)
    s.on_validation(9.0)  # 1 bad: within patience
    assert s.get_last_lr()[0] == 1.0
    s.on_validation(9.5)  # 2 bad: reduce
    assert s.get_last_lr()[0] == 0.5
    s.on_validation(11.0)  # new best resets the count
    s.on_validation(1.0)
    s.on_validation(1.0)
    assert s.get_last_lr()[0] == 0.3  # 0.25 clipped to min_lr


def test_plateau_reduction_during_warmup_scales_the_warmup():
    s = ReduceOnPlateau(make_opt(1.0), warmup_steps=4, factor_on_plateau=0.5, patience=0, min_lr=0.0)
    lrs(s, 1)
    s.on_validation(1.0)
    s.on_validation(0.0)  # no improvement, patience 0: halve
    assert lrs(s, 4) == [0.25, 0.375, 0.5, 0.5]  # (step / 4) * 0.5


@pytest.mark.parametrize("cls", [Constant, InverseSqrt, ReduceOnPlateau])
def test_state_dict_round_trip_continues_identically(cls):
    a = cls(make_opt(1.0), warmup_steps=3)
    lrs(a, 5)
    if isinstance(a, ReduceOnPlateau):
        a.on_validation(1.0)
        a.on_validation(0.0)
    b = cls(make_opt(1.0), warmup_steps=3)
    b.optimizer.load_state_dict(a.optimizer.state_dict())  # as the loop resumes: optimizer, then schedule
    b.load_state_dict(weights_only_copy(a.state_dict()))
    assert b.get_last_lr() == a.get_last_lr()
    assert lrs(a, 6) == lrs(b, 6)


def test_options_come_from_the_config_on_resume():
    a = InverseSqrt(make_opt(1.0), warmup_steps=3, min_lr=0.0)
    lrs(a, 10)
    assert set(a.state_dict()).isdisjoint({"warmup_steps", "min_lr"})
    b = InverseSqrt(make_opt(1.0), warmup_steps=3, min_lr=0.2)  # resumed with a floor
    b.load_state_dict(a.state_dict())
    assert lrs(b, 80)[-1] == 0.2 and lrs(a, 80)[-1] < 0.2


@pytest.mark.parametrize("cls", [Constant, InverseSqrt])
def test_the_former_state_format_resumes(cls):
    """Checkpoints written before the schedules were LambdaLR hold {step_count, base_lrs}."""
    a = cls(make_opt(2.0), warmup_steps=4)
    lrs(a, 7)
    b = cls(make_opt(2.0), warmup_steps=4)
    b.optimizer.load_state_dict(a.optimizer.state_dict())  # as the loop resumes: optimizer, then schedule
    b.load_state_dict({"step_count": 7, "base_lrs": [2.0]})
    assert b.last_epoch == 7 and b.get_last_lr() == a.get_last_lr()
    assert lrs(a, 9) == lrs(b, 9)


SCHEDULERS = sorted(p.stem for p in (CONF / "scheduler").glob("*.yaml"))
OPTIMIZERS = sorted(p.stem for p in (CONF / "optimizer").glob("*.yaml"))


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_each_shipped_schedule_peaks_at_the_optimizer_lr(scheduler, optimizer):
    """Built as the loop builds them: conf/optimizer x conf/scheduler, partials applied to the parameters."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"optimizer={optimizer}", f"scheduler={scheduler}"])
    model = torch.nn.Linear(3, 2)
    opt = instantiate(cfg.optimizer)(model.parameters())
    schedule = instantiate(cfg.scheduler)(opt)
    warmup = cfg.scheduler.warmup_steps
    got = lrs(schedule, warmup + 2)
    assert max(got) == got[max(warmup - 1, 0)] == cfg.optimizer.lr
    assert all(a <= b for a, b in zip(got[:warmup], got[1:warmup]))  # rising during the warmup
    assert weights_only_copy(schedule.state_dict()).keys() == schedule.state_dict().keys()


@pytest.mark.parametrize("name", ["adamw", "adam"])
def test_the_adam_configs_build_fused_optimizers_that_follow_the_foreach_path(name):
    """conf/optimizer/{adamw,adam}.yaml ask for the fused kernel (several times cheaper on the CPU); its
    updates are those of PyTorch's default (foreach) implementation up to float rounding."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"optimizer={name}"])
    torch.manual_seed(0)
    fused_params = [torch.nn.Parameter(torch.randn(33, 17)), torch.nn.Parameter(torch.randn(17))]
    plain_params = [torch.nn.Parameter(p.detach().clone()) for p in fused_params]
    start = [p.detach().clone() for p in fused_params]
    fused = instantiate(cfg.optimizer)(fused_params)
    hyper = {k: v for k, v in fused.defaults.items() if k in ("lr", "betas", "eps", "weight_decay")}
    plain = type(fused)(plain_params, foreach=True, **hyper)
    assert fused.defaults["fused"] is True
    assert type(fused) is {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}[name]
    for _ in range(5):
        grads = [torch.randn_like(p) for p in fused_params]
        for params, opt in ((fused_params, fused), (plain_params, plain)):
            for p, g in zip(params, grads):
                p.grad = g.clone()
            opt.step()
    for a, b in zip(fused_params, plain_params):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert all((p - s).abs().min() > 0 for p, s in zip(fused_params, start))  # every weight was updated
