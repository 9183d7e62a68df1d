"""Build a model from its Hydra config (conf/model/*.yaml) through `_target_`: no registry.

The config may come from a checkpoint, so it is untrusted input: `_target_` must name a Seq2Seq class
defined in translate.models (checked before anything is called, and only modules of translate.models are
ever imported), the other keys are the model's arguments, passed as they are. Nothing is instantiated
recursively: a nested `_target_` (or any other Hydra `_key_`) is refused, so a config can neither call an
arbitrary function nor build an arbitrary object.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from translate.models.interface import Seq2Seq

log = logging.getLogger(__name__)

PACKAGE = "translate.models"


def model_class(target: Any) -> type[Seq2Seq]:
    """The Seq2Seq class that `target` ("translate.models.<module>.<Class>") names, else a ValueError."""
    if not isinstance(target, str) or not target.startswith(PACKAGE + "."):
        raise ValueError(f"_target_={target!r} is not one of the project's models ({PACKAGE}.<module>.<cls>)")
    module_name, _, name = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)  # a module of this package: nothing else is imported
    except ImportError:
        raise ValueError(f"_target_={target}: no module {module_name}") from None
    cls = vars(module).get(name)
    if not (isinstance(cls, type) and issubclass(cls, Seq2Seq) and cls.__module__ == module_name):
        raise ValueError(f"_target_={target} is not a Seq2Seq model class defined in {module_name}")
    return cls


def hydra_keys(node: Any, where: str = "") -> list[str]:
    """Paths of every `_key_` (such as a nested `_target_`) inside the argument values of a config."""
    found = []
    if isinstance(node, Mapping):
        for k, v in node.items():
            path = f"{where}.{k}" if where else str(k)
            if isinstance(k, str) and k.startswith("_") and k.endswith("_"):
                found.append(path)
            found += hydra_keys(v, path)
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            found += hydra_keys(v, f"{where}[{i}]")
    return found


def build_model(
    model_cfg: DictConfig | Mapping[str, Any], src_vocab_size: int, tgt_vocab_size: int, shared_vocab: bool
) -> Seq2Seq:
    """Build `model_cfg`'s `_target_` class with its other keys, plus the sizes only the tokenizer knows."""
    if isinstance(model_cfg, DictConfig):
        cfg = OmegaConf.to_container(model_cfg, resolve=True)
    elif isinstance(model_cfg, Mapping):
        cfg = dict(model_cfg)
    else:
        raise ValueError(f"model config must be a mapping, got {type(model_cfg).__name__}")
    if "_target_" not in cfg:
        raise ValueError(f"model config has no _target_ (keys: {', '.join(map(str, cfg.keys()))})")
    cls = model_class(cfg.pop("_target_"))
    special = hydra_keys(cfg)
    if special:
        raise ValueError(f"model config may hold only _target_ and the model's arguments, found {special[0]}")
    if not all(isinstance(k, str) for k in cfg):
        raise ValueError("model config keys must be strings")
    sizes = {"src_vocab_size": src_vocab_size, "tgt_vocab_size": tgt_vocab_size, "shared_vocab": shared_vocab}
    model = cls(**{**cfg, **sizes})
    log.info("model: %s", model.describe())
    return model
