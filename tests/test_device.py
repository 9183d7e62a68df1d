"""translate/device.py: one meaning of device=auto | cpu | cuda | cuda:N for every entry point."""

import pytest
import torch

from translate import device as device_module
from translate.cli import main as cli
from translate.device import DeviceError, resolve_device


@pytest.fixture(params=[False, True], ids=["no CUDA", "CUDA"])
def cuda(request, monkeypatch):
    """Pretend CUDA is (not) available; resolve_device only asks, it touches no GPU."""
    monkeypatch.setattr(device_module.torch.cuda, "is_available", lambda: request.param)
    return request.param


def test_auto_is_this_ranks_gpu_when_there_is_one_else_the_cpu(cuda):
    expected = [torch.device("cuda", 0), torch.device("cuda", 2)] if cuda else [torch.device("cpu")] * 2
    assert [resolve_device("auto"), resolve_device("auto", local_rank=2)] == expected
    assert resolve_device("cpu", local_rank=2) == torch.device("cpu")


def test_cuda_names_a_gpu_or_fails_in_one_line(cuda):
    if cuda:
        assert resolve_device("cuda", local_rank=1) == torch.device("cuda", 1)
        assert resolve_device("cuda:3", local_rank=1) == torch.device("cuda", 3)  # an explicit index wins
        assert resolve_device(torch.device("cuda", 2)) == torch.device("cuda", 2)
    else:
        for name in ("cuda", "cuda:1"):
            with pytest.raises(DeviceError, match=f"^device={name}: CUDA is not available on this machine"):
                resolve_device(name)


def test_a_device_torch_does_not_know_is_a_one_line_error():
    with pytest.raises(DeviceError, match="^device=gpu: expected auto, cpu, cuda or cuda:N$"):
        resolve_device("gpu")


def test_cli_reports_an_unusable_device_in_one_line(monkeypatch, tmp_path, capsys):
    """The device is resolved before the checkpoint is read, so no checkpoint is needed to see the error."""
    monkeypatch.setattr(device_module.torch.cuda, "is_available", lambda: False)
    assert cli(["-c", str(tmp_path / "x.pt"), "--device", "cuda", "hola"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "translate: error: device=cuda: CUDA is not available on this machine (use device=cpu)"
    ]
