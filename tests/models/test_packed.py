"""The output projection through oneDNN's packed weight (translate/models/packed.py) against F.linear: the
same logits at any row count, a new packing after the weight changes, F.linear wherever it does not apply."""

import pytest
import torch
from torch import nn

from translate.models import cpu_linear, packed

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="a torch build without oneDNN"),
]


def same(a, b):
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.fixture(autouse=True)
def onednn_only(monkeypatch):
    """These tests are of the oneDNN path: our compiled kernel, which serves before it, is tested in
    test_cpu_linear.py."""
    monkeypatch.setattr(cpu_linear, "panel_set", lambda *a: None)


def layer(bias=True, seed=0):
    """Frozen, as load_model gives: only frozen weights are packed."""
    torch.manual_seed(seed)
    return nn.Linear(32, 640, bias=bias).requires_grad_(False)


@pytest.mark.parametrize("bias", [True, False])
@torch.no_grad()
def test_the_linear_layers_output_at_any_row_count(bias):
    lin = layer(bias)
    for rows in (1, 3, 64, 257):
        x = torch.randn(rows, 32)
        assert packed.applies(lin, x)
        same(packed.linear(lin, x), packed.linear_reference(lin, x))


@torch.no_grad()
def test_a_changed_weight_is_packed_again():
    """An in-place update (an optimizer step, load_state_dict) and a new tensor both reach the output."""
    lin, x = layer(), torch.randn(4, 32)
    before = packed.linear(lin, x)
    lin.weight.mul_(2.0)  # in place: the version counter moves
    same(packed.linear(lin, x), packed.linear_reference(lin, x))
    assert not torch.allclose(packed.linear(lin, x), before)
    lin.load_state_dict(layer(seed=1).state_dict())
    same(packed.linear(lin, x), layer(seed=1)(x))
    lin.weight = nn.Parameter(torch.randn(640, 32), requires_grad=False)  # another tensor
    same(packed.linear(lin, x), packed.linear_reference(lin, x))


def test_f_linear_wherever_it_does_not_apply():
    lin, x = layer().requires_grad_(True), torch.randn(4, 32)
    with torch.no_grad():
        assert not packed.applies(lin, x)  # a weight that trains: a fused optimizer would leave a copy stale
    out = packed.linear(lin, x)  # autograd on: F.linear, and the gradient flows
    assert not packed.applies(lin, x) and out.requires_grad
    out.sum().backward()
    assert lin.weight.grad is not None
    lin.requires_grad_(False)
    with torch.no_grad():
        assert packed.applies(lin, x)
        assert not packed.applies(lin.double(), x.double())  # fp64
        assert not packed.applies(lin, torch.randn(2, 3, 32))  # not (rows, features)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not packed.applies(lin.float(), x)
        model = torch.ao.quantization.quantize_dynamic(nn.Sequential(layer()), {nn.Linear}, torch.qint8)
        assert not packed.applies(model[0], x)
        same(packed.linear(model[0], x), model[0](x))  # dynamic int8: its own product


@torch.no_grad()
def test_onednn_switched_off_by_the_user_is_respected():
    lin, x = layer(), torch.randn(4, 32)
    with torch.backends.mkldnn.flags(enabled=False):
        assert not packed.applies(lin, x)
        same(packed.linear(lin, x), packed.linear_reference(lin, x))
    assert packed.applies(lin, x)
