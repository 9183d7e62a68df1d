"""The compiled product kernel (translate/models/cpu_linear.py) against F.linear: every tail of its tiles and
panels, strided rows, ReLU, threads, NaN; its packed weights following the layers; where it serves; its
fallbacks."""

import pytest
import torch
from torch import nn

from translate.models import cpu_linear, packed

needs_kernel = pytest.mark.skipif(
    cpu_linear._library()[0] is None, reason=f"no compiled kernel here: {cpu_linear.status()}"
)
pytestmark = pytest.mark.usefixtures("one_thread")


def _width() -> int:
    return cpu_linear._library()[0].translate_linear_width()


def _packed(layer: nn.Linear) -> cpu_linear.Panels:
    return cpu_linear.panel_set(layer, {"w": (layer,)})["w"]


def _frozen(*layers: nn.Linear):
    """As load_model gives: only frozen weights are packed."""
    return [layer.requires_grad_(False) for layer in layers]


@needs_kernel
@pytest.mark.parametrize("rows", [0, 1, 2, 5, 6, 7, 47, 48, 49, 101])
@pytest.mark.parametrize("out_extra", [0, 1, -1, 5])  # whole panels, one column over, one short, a tail
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("relu", [False, True])
@torch.no_grad()
def test_the_same_product_as_f_linear(rows, out_extra, bias, relu):
    torch.manual_seed(rows)
    (layer,) = _frozen(nn.Linear(37, 2 * _width() + out_extra, bias=bias))
    x = torch.randn(rows, 37)
    got = cpu_linear.linear(x, _packed(layer), relu)
    assert got.shape == (rows, layer.out_features)
    torch.testing.assert_close(got, cpu_linear.linear_reference(x, layer.weight, layer.bias, relu))


@needs_kernel
@torch.no_grad()
def test_strided_rows_two_threads_and_nan(monkeypatch):
    torch.manual_seed(0)
    (layer,) = _frozen(nn.Linear(24, 40))
    wide = torch.randn(9, 64)
    x = wide[:, 8:32]  # rows 64 apart
    assert cpu_linear.applies(x) and not x.is_contiguous()
    want = layer(x)
    torch.testing.assert_close(cpu_linear.linear(x, _packed(layer)), want)
    torch.set_num_threads(2)
    torch.testing.assert_close(cpu_linear.linear(x, _packed(layer)), want)
    x = x.clone()
    x[3, 5] = float("nan")  # row 3 is NaN everywhere, ReLU keeps it (as F.relu); the other rows are untouched
    out = cpu_linear.linear(x, _packed(layer), relu=True)
    assert out[3].isnan().all() and not out[[0, 1, 2, 4, 5, 6, 7, 8]].isnan().any()
    torch.testing.assert_close(out[:3], torch.relu(want[:3]))


@needs_kernel
@torch.no_grad()
def test_packed_weights_follow_in_place_updates_new_tensors_and_data_swaps():
    torch.manual_seed(0)
    q, k = _frozen(nn.Linear(8, 16), nn.Linear(8, 16))
    owner = nn.Module()
    x = torch.randn(3, 8)
    first = cpu_linear.panel_set(owner, {"qk": (q, k)})
    assert cpu_linear.panel_set(owner, {"qk": (q, k)}) is first  # made once
    torch.testing.assert_close(cpu_linear.linear(x, first["qk"]), torch.cat([q(x), k(x)], dim=1))
    k.weight.mul_(2)  # in place (an optimizer step, load_state_dict)
    torch.testing.assert_close(_qk(owner, q, k, x)[:, 16:], k(x))
    q.weight = nn.Parameter(torch.ones(16, 8), requires_grad=False)  # another tensor
    torch.testing.assert_close(_qk(owner, q, k, x)[:, :16], q(x))
    q.bias.data = torch.zeros(16)  # a .data swap
    torch.testing.assert_close(_qk(owner, q, k, x)[:, :16], x @ torch.ones(8, 16))
    k.requires_grad_(True)  # thawed to train: a fused optimizer would update it without a version change
    assert cpu_linear.panel_set(owner, {"qk": (q, k)}) is None


def _qk(owner, q, k, x):
    return cpu_linear.linear(x, cpu_linear.panel_set(owner, {"qk": (q, k)})["qk"])


@needs_kernel
def test_none_where_it_does_not_serve():
    owner = nn.Module()
    assert cpu_linear.panel_set(owner, {"w": (nn.Linear(8, 4),)}) is None  # a weight that trains
    assert cpu_linear.panel_set(owner, {"w": _frozen(nn.Linear(8, 4).double())}) is None  # float64
    assert cpu_linear.panel_set(owner, {"w": _frozen(nn.Linear(8, 4), nn.Linear(8, 4, bias=False))}) is None
    assert cpu_linear.panel_set(owner, {"w": _frozen(nn.Linear(8, 4), nn.Linear(6, 4))}) is None  # in sizes
    quantized = torch.ao.quantization.quantize_dynamic(nn.Sequential(nn.Linear(8, 4)), {nn.Linear},
                                                       torch.qint8)  # fmt: skip
    assert cpu_linear.panel_set(owner, {"w": (quantized[0],)}) is None  # dynamic int8: its own product
    x = torch.randn(2, 8)
    assert not cpu_linear.applies(x)  # autograd recording: the kernel has no backward
    with torch.no_grad():
        assert cpu_linear.applies(x)
        assert not cpu_linear.applies(x.double()) and not cpu_linear.applies(torch.randn(2, 3, 8))
        assert not cpu_linear.applies(x.t())  # columns not contiguous
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not cpu_linear.applies(x)


@needs_kernel
def test_the_output_projection_takes_the_kernel_and_keeps_autograd():
    torch.manual_seed(0)
    layer, x = nn.Linear(32, 70), torch.randn(5, 32)
    with torch.no_grad():
        layer.requires_grad_(False)
        assert cpu_linear.panel_set(layer, {"output": (layer,)}) is not None
        torch.testing.assert_close(packed.linear(layer, x), layer(x))
        layer.requires_grad_(True)
    out = packed.linear(layer, x)  # autograd on: F.linear, and the gradient flows
    out.sum().backward()
    assert layer.weight.grad is not None


@pytest.fixture
def fresh_library(monkeypatch, tmp_path):
    monkeypatch.setenv("TRANSLATE_KERNEL_CACHE", str(tmp_path / "kernels"))
    cpu_linear._library.cache_clear()
    yield
    cpu_linear._library.cache_clear()


@pytest.mark.parametrize(
    "env,expected",
    [
        ({"TRANSLATE_CPU_KERNEL": "0"}, "switched off (TRANSLATE_CPU_KERNEL=0)"),
        ({"CC": "/bin/false"}, "/bin/false -O3 -march=native -fopenmp failed"),
    ],
)
def test_falls_back_to_f_linear_with_the_reason(monkeypatch, fresh_library, env, expected, caplog):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with caplog.at_level("INFO", logger="translate.models.cpu_linear"):
        assert cpu_linear._library()[0] is None
    assert cpu_linear.status().startswith(expected) and expected in caplog.text
    (layer,) = _frozen(nn.Linear(8, 4))
    assert cpu_linear.panel_set(nn.Module(), {"w": (layer,)}) is None
    with torch.no_grad():
        x = torch.randn(3, 8)
        torch.testing.assert_close(packed.linear(layer, x), layer(x))  # oneDNN or F.linear


@needs_kernel
def test_builds_into_its_cache_atomically(fresh_library, tmp_path):
    assert cpu_linear._library()[0] is not None and cpu_linear.status().startswith("compiled")
    files = sorted(p.name for p in (tmp_path / "kernels").iterdir())
    assert len(files) == 1 and files[0].startswith("cpu_linear-") and files[0].endswith(".so")  # no temp left
