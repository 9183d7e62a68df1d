"""EvalSettings: the one home of the evaluation defaults, typed; conf/evaluate.yaml's schema.

conf/evaluate.yaml starts from it (`evaluate_schema`, register_with_hydra) and writes only Hydra's own node:
every default below is the project's, defined nowhere else, and a wrong type or an unknown key fails
composition before a checkpoint is loaded. translate/evaluate.py converts the composed config back into
this class; scripts/compare.py and the tests build it directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from translate.data.config import CACHE_DIR
from translate.metrics.by_length import Bootstrap
from translate.search.config import SearchConfig, structured_node


@dataclass
class EvalSettings:
    checkpoints: list[str] = field(default_factory=list)  # empty: the newest checkpoints/best.pt under runs/
    labels: list[str] = field(default_factory=list)  # one per checkpoint; empty: the model class (+ run name)
    engine: str = "torch"  # torch: our search on checkpoints | ct2: CTranslate2 on `translate export` dirs
    quantize: str = "none"  # engine torch: none | int8 (PyTorch dynamic int8 on the CPU)
    glossary: str | None = None  # a TSV of source<TAB>target terms, enforced by constrained beam search; its
    # term success scored
    copies: int = 3  # repetition_rate: a token or bigram this many times in a row
    split: str = "test"
    device: str = "auto"  # auto (cuda when available) | cpu | cuda
    cache_dir: str = CACHE_DIR  # the data pipeline's cache (relative to the launch directory)
    progress: bool = True  # tqdm bar while translating
    search: SearchConfig = field(default_factory=SearchConfig)
    bootstrap: Bootstrap = field(default_factory=Bootstrap)  # BLEU's and each length bucket's interval
    alignments: list[int] = field(default_factory=lambda: [0, 1, 2])  # sentences of the split to draw


def register_with_hydra() -> None:
    """Store EvalSettings as `evaluate_schema` (conf/evaluate.yaml's first default)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="evaluate_schema", node=structured_node(EvalSettings))

