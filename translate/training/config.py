"""TrainerConfig and TrainConfig: the one home of the training defaults, typed.

conf/train.yaml composes TrainConfig as its schema (`train_schema`, register_with_hydra): every default below
is the project's, defined nowhere else; train.yaml and the experiments (conf/experiment/) write only what they
change, and a wrong type or an unknown key fails composition, before any work. The model, optimizer and
scheduler nodes are Hydra `_target_` configs (conf/model/, conf/optimizer/, conf/scheduler/); the data node is
translate.data.config.DataConfig.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from translate.data import config as data_config
from translate.data.config import CACHE_DIR, DataConfig
from translate.search.config import SearchConfig, structured_node


@dataclass
class TrainerConfig:
    # budgets (0 = no limit; the first one reached stops the run); max_time: seconds or "90s", "25m", "1h"
    max_steps: int = 0
    max_epochs: int = 0
    max_time: Any = "26m"  # ends the default run by itself within 30 minutes on a 2-core CPU
    # batches and updates
    max_tokens: int = 3000  # padded tokens per micro-batch (per rank): B * max length
    accum_steps: int = 1  # micro-batches per update
    label_smoothing: float = 0.1
    clip_norm: float = 1.0  # 0 = no clipping (the norm is still logged)
    # auto: bf16 where the hardware runs it natively (CUDA with bf16; CPU with AVX-512 BF16 or AMX, confirmed
    # by a <1 s matmul benchmark), else fp32; logged with the reason. fp32 | bf16 (autocast) | fp16 (autocast
    # + GradScaler, CUDA only) force one (translate/training/precision.py)
    precision: str = "auto"
    compile: bool = False  # torch.compile the model
    max_bad_steps: int = 5  # non-finite losses in a row before the run stops (each one skips its update)
    # validation: dev loss + dev BLEU; best.pt follows dev BLEU
    val_every_steps: int = 0  # 0 = not by steps
    val_every_time: Any = "4m"  # 0 = not by time; else seconds or "5m" (DDP: all ranks validate together)
    val_subset: int = 400  # dev pairs scored (spread evenly over the split); 0 = the whole dev split
    # dev BLEU decoding: SearchConfig's defaults except greedy (cheap inside the training budget) and larger
    # batches (source tokens per batch, decoding and the dev loss alike)
    val_search: SearchConfig = field(default_factory=lambda: SearchConfig(beam_size=1, batch_tokens=6000))
    patience: int = 0  # validations without a new best dev BLEU before stopping; 0 = never stop early
    # checkpoints and logs
    keep_last: int = 3  # step-N.pt files kept (for scripts/average_checkpoints.py); 0 = only last/best
    log_every: int = 50  # optimizer steps between TensorBoard / train_log.jsonl points
    resume: Any = False  # true: continue from <hydra.run.dir>/checkpoints/last.pt; auto: that if it exists
    resume_from: str | None = None  # or from this checkpoint file
    # a new run starting from this checkpoint's weights, model config and tokenizer (e.g. `translate import
    # marian`); fresh optimizer and schedule; ignored when resuming
    init_from: str | None = None


@dataclass
class TrainConfig:
    """The whole of conf/train.yaml but Hydra's own node."""

    seed: int = 1234
    device: str = "auto"  # auto (cuda when available) | cpu | cuda | cuda:<n>
    cache_dir: str = CACHE_DIR  # tokenizer and encoded-corpus cache (relative to the launch directory)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: Any = None  # conf/model/<name>.yaml: `_target_` and the model's arguments
    optimizer: Any = None  # conf/optimizer/<name>.yaml
    scheduler: Any = None  # conf/scheduler/<name>.yaml


def register_with_hydra() -> None:
    """Store TrainConfig as `train_schema` (conf/train.yaml's first default)."""
    from hydra.core.config_store import ConfigStore

    data_config.register_with_hydra()
    ConfigStore.instance().store(name="train_schema", node=structured_node(TrainConfig))
