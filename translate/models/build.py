"""Build a model from its Hydra config (conf/model/*.yaml) through `_target_`: no registry."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from translate.models.interface import Seq2Seq

log = logging.getLogger(__name__)


def build_model(
    model_cfg: DictConfig | Mapping[str, Any], src_vocab_size: int, tgt_vocab_size: int, shared_vocab: bool
) -> Seq2Seq:
    """Instantiate `model_cfg` (with `_target_`), filling in the sizes only the tokenizer knows."""
    cfg = model_cfg if isinstance(model_cfg, DictConfig) else OmegaConf.create(dict(model_cfg))
    if "_target_" not in cfg:
        raise ValueError(f"model config has no _target_ (keys: {', '.join(map(str, cfg.keys()))})")
    model = instantiate(
        cfg, src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size, shared_vocab=shared_vocab
    )
    if not isinstance(model, Seq2Seq):
        raise ValueError(
            f"model config _target_={cfg._target_} does not build a Seq2Seq ({type(model).__name__})"
        )
    log.info("model: %s", model.describe())
    return model
