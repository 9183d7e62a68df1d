"""Decoding engines: the same "source ids in, n-best hypotheses out" call over different runtimes.

| engine | class | loads | int8 |
|---|---|---|---|
| `torch` (default) | pytorch.TorchEngine | a checkpoint (.pt) | `quantize="int8"`: dynamic int8 |
| `ct2` | ct2.CT2Engine | a `translate export --format ct2` directory | chosen at export (`--quantization`) |

Each is an `Engine` (translate/engines/interface.py, a Protocol): `translate_ids(src_ids, search, progress=,
desc=)`, `tokenizer`, `data_config`, `source_limit`, `info`, `model` and `describe()`. ctranslate2 is an
optional extra (`pip install -e '.[ct2]'`), imported only when a CT2 model is loaded or exported.
"""

from __future__ import annotations

from translate.engines.errors import EngineError
from translate.engines.interface import Engine

ENGINES = ("torch", "ct2")
QUANTIZE = ("none", "int8")  # --quantize of the torch engine
# --ct2-stopping of the ct2 engine, the default first: native = CTranslate2 stops at K ended hypotheses
# (fast); exact = our beam's bound, searching to the length limit (translate/engines/README.md)
CT2_STOPPING = ("native", "exact")


def engine_device(name="auto", quantize: str = "none"):
    """translate.device.resolve_device, except that "auto" means the CPU for dynamic int8 (it has CPU kernels
    only; an explicit CUDA device with int8 is refused by the engine)."""
    from translate.device import resolve_device

    return resolve_device("cpu" if quantize == "int8" and str(name) == "auto" else name)


def load_engine(
    engine: str, path, *, device="cpu", quantize: str = "none", threads: int = 0,
    ct2_stopping: str = CT2_STOPPING[0], shortlist=None,
) -> Engine:  # fmt: skip
    """`engine` torch: `path` is a checkpoint; ct2: an exported model directory (stopping: CT2_STOPPING).

    device: a torch.device or its name (translate.device.resolve_device turns "auto" into one); shortlist: a
    vocabulary shortlist file for the torch engine (scripts/build_shortlist.py)."""
    if engine == "torch":
        from translate.engines.pytorch import TorchEngine

        return TorchEngine(path, device=device, quantize=quantize, shortlist=shortlist)
    if engine == "ct2":
        if quantize != "none":
            raise EngineError("--quantize applies to --engine torch; a ct2 model is quantized when exported "
                              "(translate export --quantization)")  # fmt: skip
        if shortlist:
            raise EngineError("--shortlist applies to --engine torch (CTranslate2's own vocabulary map, "
                              "use_vmap, is not exported)")  # fmt: skip
        from translate.engines.ct2 import CT2Engine

        return CT2Engine(path, device=device, threads=threads, stopping=ct2_stopping)
    raise EngineError(f"--engine {engine}: expected one of {'|'.join(ENGINES)}")


__all__ = ["CT2_STOPPING", "ENGINES", "QUANTIZE", "Engine", "EngineError", "engine_device", "load_engine"]
