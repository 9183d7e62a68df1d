"""DataConfig: the one home of the data defaults (filters, tokenizer, carving), typed, and the cache's place.

Every conf/data/<name>.yaml starts from DataConfig (its first default is `schema`, register_with_hydra) and
writes what its corpus needs: the name, the source, the languages, where the files are, and whatever it
changes. A wrong type or an unknown key fails composition. The fields of one source are ignored by the others
(`path`: tsv and hub; `train`/`dev`/`test`, `header`, `carve`: local; `hub_config`, `hub_splits`: hub).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import MISSING, DictConfig

# Tokenizers and encoded splits, relative to the launch directory: what training, evaluation, `make data` and
# the benchmarks read and write unless told otherwise.
CACHE_DIR = ".cache/translate"
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


@dataclass
class FilterConfig:
    """In whitespace words; they cut the training split only (translate/data/filters.py)."""

    max_len: int | None = 100  # null: no limit
    max_ratio: float | None = 3.0  # longer side / shorter side; null: no limit


@dataclass
class TokenizerConfig:
    """SentencePiece, trained on the filtered training split only (translate/data/tokenizer.py)."""

    model_type: str = "unigram"  # unigram | bpe
    vocab_size: int = 8000  # an upper bound on a tiny corpus (hard_vocab_limit=false)
    joint: bool = True  # one model for both languages (shared vocabulary)
    character_coverage: float = 1.0
    input_sentence_size: int = 1_000_000  # pairs sampled to train on, at most
    seed: int = 0


@dataclass
class CarveConfig:
    """data=local: the fractions of train held out for a dev or test split the config leaves null."""

    dev: float = 0.05
    test: float = 0.05
    seed: int = 0


@dataclass
class DataConfig:
    name: str = MISSING
    source: str = MISSING  # tsv | local | hub (translate/data/corpus.py)
    src_lang: str = MISSING  # language codes: the TSV columns (tsv), the hub's translation keys (hub)
    tgt_lang: str = MISSING
    path: str | None = None  # tsv: directory of {train,dev,test}.tsv.gz; hub: dataset id or local directory
    train: Any = None  # local: path.tsv[.gz] or [src.txt, tgt.txt]; relative: cwd, then the project root
    dev: Any = None  # local: null = carved out of train
    test: Any = None
    header: bool = False  # local: TSV files start with a header line to skip
    carve: CarveConfig = field(default_factory=CarveConfig)
    hub_config: str | None = None  # hub: the dataset's configuration (e.g. fr-en)
    hub_splits: dict[str, str] = field(default_factory=lambda: {"train": "train", "dev": "validation",
                                                                  "test": "test"})  # fmt: skip
    filters: FilterConfig = field(default_factory=FilterConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)


def register_with_hydra() -> None:
    """Store DataConfig as `data/schema` (each conf/data/*.yaml's first default)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group="data", name="schema", node=DataConfig)


def compose_data_config(name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """conf/data/<name>.yaml, typed, with `data.`-prefixed overrides, through Hydra (an unknown name lists the
    choices): what `make data`, the benchmarks and the tests read a data config with."""
    from hydra import compose, initialize_config_dir

    register_with_hydra()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(overrides=[f"+data={name}", *overrides]).data
