import math

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from translate.training.optim import Constant, InverseSqrt, ReduceOnPlateau


def make_opt(lr=1.0):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def lrs(schedule, n):
    out = []
    for _ in range(n):
        out.append(schedule.get_last_lr()[0])
        schedule.step()
    return out


def test_inverse_sqrt_warms_up_linearly_peaks_then_decays():
    s = InverseSqrt(make_opt(2.0), warmup_steps=4)
    got = lrs(s, 16)
    assert got[:4] == pytest.approx([0.5, 1.0, 1.5, 2.0])  # step 4 (index 3) is the peak
    assert got[15] == pytest.approx(2.0 * math.sqrt(4 / 16))
    assert all(a >= b for a, b in zip(got[3:], got[4:]))


def test_constant_with_warmup():
    got = lrs(Constant(make_opt(1.0), warmup_steps=2), 5)
    assert got == pytest.approx([0.5, 1.0, 1.0, 1.0, 1.0])


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


@pytest.mark.parametrize("cls", [Constant, InverseSqrt, ReduceOnPlateau])
def test_state_dict_round_trip_continues_identically(cls, tmp_path):
    a = cls(make_opt(1.0), warmup_steps=3)
    lrs(a, 5)
    a.on_validation(1.0)
    a.on_validation(0.0)
    path = tmp_path / "s.pt"
    torch.save(a.state_dict(), path)
    b = cls(make_opt(1.0), warmup_steps=3)
    b.load_state_dict(torch.load(path, weights_only=True))
    assert lrs(a, 6) == lrs(b, 6)


@pytest.mark.parametrize(
    "target,kwargs",
    [
        ("torch.optim.AdamW", {"lr": 1e-3, "betas": [0.9, 0.98]}),
        ("torch.optim.Adadelta", {"lr": 1.0, "rho": 0.95}),
    ],
)
def test_optimizers_come_from_config_partials(target, kwargs):
    cfg = OmegaConf.create({"_target_": target, "_partial_": True, **kwargs})
    model = torch.nn.Linear(3, 2)
    opt = instantiate(cfg)(model.parameters())
    assert type(opt).__name__ == target.rsplit(".", 1)[1]
    model(torch.ones(1, 3)).sum().backward()
    before = model.weight.detach().clone()
    opt.step()
    assert not torch.equal(before, model.weight)
