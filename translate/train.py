"""`make train` = `python -m translate.train [overrides]`: the Hydra app.

It composes conf/train.yaml, makes the paths it owns absolute (cache_dir, trainer.resume_from,
trainer.init_from: relative to the launch directory), calls the loop (translate/training/loop.py) and turns
the project's user-facing errors into one line on stderr and exit code 2. The data config's paths are kept as
written, so a checkpoint's config stays portable; the data library resolves them (translate/data/corpus.py:
resolve_path)."""

from translate import allocator

if __name__ == "__main__":
    allocator.preload()  # first: re-executes under mimalloc before torch is imported (translate/allocator.py)

import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import to_absolute_path
from omegaconf import DictConfig

from translate.data.errors import DataError
from translate.device import DeviceError
from translate.models.checkpoint import CheckpointError
from translate.search.config import register_with_hydra
from translate.training.errors import TrainingError
from translate.training.loop import train

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")
register_with_hydra()  # conf/train.yaml's trainer.val_search


@hydra.main(config_path=CONF_DIR, config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    logging.getLogger("translate").setLevel(logging.INFO)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    cfg.cache_dir = to_absolute_path(cfg.cache_dir)
    if cfg.trainer.resume_from:
        cfg.trainer.resume_from = to_absolute_path(cfg.trainer.resume_from)
    if cfg.trainer.init_from:
        cfg.trainer.init_from = to_absolute_path(cfg.trainer.init_from)
    try:
        result = train(cfg, run_dir)
    except (DataError, CheckpointError, DeviceError, TrainingError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    if int(os.environ.get("RANK", "0")) == 0:
        print(result.summary, flush=True)
    if result.signum:
        sys.exit(128 + result.signum)  # interrupted (checkpoint saved): the conventional shell status


if __name__ == "__main__":
    main()
