"""SearchConfig: the one home of the decoding settings (beam, length penalty, length limit, batch size).

Validation, evaluation, the CLI, the server, the benchmarks and anything else that decodes build one of these;
its defaults are the project's decoding defaults, defined nowhere else. The Hydra apps compose it as the
structured config `search/default` (register_with_hydra): conf/evaluate.yaml's `search` node and
conf/train.yaml's `trainer.val_search` start from it, typed, and override only what they show.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SearchConfig:
    beam_size: int = 5  # 1 = greedy
    nbest: int = 1  # hypotheses returned per sentence (<= beam_size)
    alpha: float = 0.6  # GNMT length penalty ((5 + len) / 6) ** alpha; 0 = raw log-probability
    max_len_a: float = 1.5  # output length limit: a * source length + b (subwords)
    max_len_b: int = 10
    max_tokens: int = 4000  # padded source tokens per decoding batch

    def __post_init__(self) -> None:
        """Errors start with the field's name, so each entry point can name its own option."""
        if self.beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {self.beam_size}")
        if not 1 <= self.nbest <= self.beam_size:
            raise ValueError(f"nbest must be between 1 and beam_size ({self.beam_size}), got {self.nbest}")
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        if self.max_len_a < 0 or self.max_len_b < 0 or self.max_len_a == self.max_len_b == 0:
            raise ValueError(
                f"max_len_a and max_len_b must be >= 0 and not both 0, got {self.max_len_a}, {self.max_len_b}"
            )
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")

    @property
    def greedy(self) -> bool:
        return self.beam_size == 1 and self.nbest == 1


def structured_node(schema: type):
    """A typed OmegaConf node of the dataclass `schema` (a wrong type or an unknown key fails composition)
    that configs may override: a frozen dataclass (SearchConfig, metrics' Bootstrap), also as a field of
    another, makes a read-only node, so the flag is cleared on every node."""
    from omegaconf import DictConfig, OmegaConf

    node = OmegaConf.structured(schema)

    def clear(n) -> None:
        OmegaConf.set_readonly(n, False)
        for key in n:
            child = n._get_node(key)
            if isinstance(child, DictConfig):
                clear(child)

    clear(node)
    return node


def register_with_hydra() -> None:
    """Store SearchConfig in Hydra's ConfigStore as `search/default` (a config's defaults list takes it with
    `- search@<node>: default`). Called by whatever composes conf/ (the Hydra apps, the tests) before it does;
    hydra is imported only here, so the CLI and the server never load it."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group="search", name="default", node=structured_node(SearchConfig))
