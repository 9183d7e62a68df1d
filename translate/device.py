"""The one device rule, below every layer: what `device=auto | cpu | cuda | cuda:N` means on this machine.

Training (one process per rank), evaluation, the CLI, the server and the benchmarks all call resolve_device,
so "auto" means the same everywhere and CUDA asked for on a machine without it is one clear error.
"""

from __future__ import annotations

import torch


class DeviceError(ValueError):
    """A device that cannot be used here; the message is one line."""


def resolve_device(name: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """'auto' -> cuda:<local_rank> when CUDA is available, else cpu; 'cuda' -> cuda:<local_rank>; 'cpu' and
    'cuda:N' as given. `local_rank` is this process's GPU under torchrun (0 otherwise)."""
    name = str(name)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"device={name}: expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device={name}: CUDA is not available on this machine (use device=cpu)")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device
