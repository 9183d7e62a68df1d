"""SearchConfig: the one home of the decoding settings (beam, length penalty, length limit, batch size).

Validation, evaluation, the CLI, the server, the benchmarks and anything else that decodes build one of these;
its defaults are the project's decoding defaults, defined nowhere else. The Hydra apps compose it as the
structured config `search/default` (register_with_hydra): conf/evaluate.yaml's `search` node and
conf/train.yaml's `trainer.val_search` start from it, typed, and override only what they show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The bounds of every field (inclusive). Each is far beyond any useful setting and keeps every number the
# search computes finite: the length penalty ((5 + len) / 6) ** alpha stays below 1e30 for any length the
# limits allow, whatever entry point (a flag, a Hydra config, an HTTP request) gives the value.
BEAM_MAX = 256
ALPHA_MAX = 5.0
MAX_LEN_A_MAX = 10.0
MAX_LEN_B_MAX = 10_000
MAX_TOKENS_MAX = 1_000_000


@dataclass(frozen=True)
class SearchConfig:
    beam_size: int = 5  # 1 = greedy; 1..BEAM_MAX
    nbest: int = 1  # hypotheses returned per sentence, 1..beam_size
    alpha: float = 0.6  # GNMT length penalty ((5 + len) / 6) ** alpha, 0..ALPHA_MAX; 0 = raw log-probability
    max_len_a: float = 1.5  # output length limit: a * source length + b (subwords); a in 0..MAX_LEN_A_MAX
    max_len_b: int = 10  # 0..MAX_LEN_B_MAX
    max_tokens: int = 4000  # padded source tokens per decoding batch, 1..MAX_TOKENS_MAX

    def __post_init__(self) -> None:
        """Errors start with the field's name, so each entry point can name its own option. Every field is
        checked for its type (an int field takes no bool or float, a float field no NaN or infinity) and its
        range."""
        _integer("beam_size", self.beam_size, 1, BEAM_MAX)
        _integer("nbest", self.nbest, 1, self.beam_size, "beam_size")
        _real("alpha", self.alpha, 0.0, ALPHA_MAX)
        _real("max_len_a", self.max_len_a, 0.0, MAX_LEN_A_MAX)
        _integer("max_len_b", self.max_len_b, 0, MAX_LEN_B_MAX)
        if self.max_len_a == self.max_len_b == 0:
            raise ValueError("max_len_a and max_len_b must not both be 0 (no output could be generated)")
        _integer("max_tokens", self.max_tokens, 1, MAX_TOKENS_MAX)

    @property
    def greedy(self) -> bool:
        return self.beam_size == 1 and self.nbest == 1


def _integer(name: str, value, low: int, high: int, high_name: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        upper = f"{high_name} ({high})" if high_name else str(high)
        raise ValueError(f"{name} must be between {low} and {upper}, got {value}")


def _real(name: str, value, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:g} and {high:g}, got {value:g}")


def register_with_hydra() -> None:
    """Store SearchConfig in Hydra's ConfigStore as `search/default` (a config's defaults list takes it with
    `- search@<node>: default`). Called by whatever composes conf/ (the Hydra apps, the tests) before it does;
    hydra is imported only here, so the CLI and the server never load it."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    node = OmegaConf.structured(SearchConfig)  # typed: a wrong type or an unknown key fails composition
    OmegaConf.set_readonly(node, False)  # a frozen dataclass makes a read-only node; configs override it
    ConfigStore.instance().store(group="search", name="default", node=node)
