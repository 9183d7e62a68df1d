"""SearchConfig: the one home of the decoding settings (strategy, beam, length penalty, length limit,
sampling, repetition controls, batch size).

Validation, evaluation, the CLI, the server, the benchmarks and anything else that decodes build one of these;
its defaults are the project's decoding defaults, defined nowhere else. The Hydra apps compose it as the
structured config `search/default` (register_with_hydra): conf/evaluate.yaml's `search` node and
conf/train.yaml's `trainer.val_search` start from it, typed, and override only what they show.
"""

from __future__ import annotations

from dataclasses import dataclass

STRATEGIES = ("beam", "greedy", "sample")
GUARD_NGRAM = 4  # repeat_guard watches n-grams of 1..GUARD_NGRAM tokens


@dataclass(frozen=True)
class SearchConfig:
    """`strategy` picks the search (translate.search.decode dispatches on it): beam (beam_size 1 with nbest 1
    runs greedy, as greedy does), greedy, or sample (one draw per sentence from the model's distribution,
    filtered by the sampling_* fields; CTranslate2's names and meanings). greedy and sample keep one
    hypothesis per sentence: beam_size does not apply to them and nbest must be 1.

    Repetition controls (every strategy; CTranslate2's names and meanings, so its engine maps them one to
    one):
    no_repeat_ngram_size n > 0 forbids any n-gram of the target twice; repetition_penalty p > 1 divides the
    positive logits (multiplies the negative ones) of every token generated so far. repeat_guard R > 0 (ours)
    ends a hypothesis (forces EOS) once it holds R copies in a row of one token or of one n-gram of up to
    GUARD_NGRAM tokens.
    """

    strategy: str = "beam"  # beam | greedy | sample
    beam_size: int = 5  # strategy beam: 1 = greedy
    nbest: int = 1  # hypotheses returned per sentence (<= beam_size)
    alpha: float = 0.6  # GNMT length penalty ((5 + len) / 6) ** alpha; 0 = raw log-probability
    max_len_a: float = 1.5  # output length limit: a * source length + b (subwords)
    max_len_b: int = 10
    max_tokens: int = 4000  # padded source tokens per decoding batch
    sampling_topk: int = 0  # sample: draw among the k most likely tokens; 0 = all, 1 = greedy
    sampling_topp: float = 1.0  # sample: among the smallest set of most likely tokens reaching this mass
    sampling_temperature: float = 1.0  # sample: logits / temperature
    seed: int = 0  # sample: a sentence's draws depend on this seed and its source only (reproducible)
    no_repeat_ngram_size: int = 0  # forbid repeating any n-gram of this size; 0 = off
    repetition_penalty: float = 1.0  # > 1 penalises tokens already generated; 1 = off
    repeat_guard: int = 0  # end a hypothesis at this many copies in a row of a token or n-gram; 0 = off

    def __post_init__(self) -> None:
        """Errors start with the field's name, so each entry point can name its own option."""
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {'|'.join(STRATEGIES)}, got {self.strategy!r}")
        if self.strategy != "beam" and self.nbest != 1:
            raise ValueError(f"nbest must be 1 with strategy {self.strategy}, got {self.nbest}")
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
        if self.sampling_topk < 0:
            raise ValueError(f"sampling_topk must be >= 0, got {self.sampling_topk}")
        if not 0.0 < self.sampling_topp <= 1.0:
            raise ValueError(f"sampling_topp must be in (0, 1], got {self.sampling_topp}")
        if not 0.0 < self.sampling_temperature < float("inf"):
            raise ValueError(f"sampling_temperature must be > 0 and finite, got {self.sampling_temperature}")
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be between 0 and 2**63 - 1, got {self.seed}")
        if self.no_repeat_ngram_size < 0:
            raise ValueError(f"no_repeat_ngram_size must be >= 0, got {self.no_repeat_ngram_size}")
        if not 1.0 <= self.repetition_penalty < float("inf"):
            raise ValueError(f"repetition_penalty must be >= 1 and finite, got {self.repetition_penalty}")
        if self.repeat_guard < 0 or self.repeat_guard == 1:
            raise ValueError(f"repeat_guard must be 0 (off) or >= 2, got {self.repeat_guard}")

    @property
    def greedy(self) -> bool:
        """Greedy search runs: strategy greedy, or beam with one beam and one hypothesis."""
        one_beam = self.strategy == "beam" and self.beam_size == 1 and self.nbest == 1
        return self.strategy == "greedy" or one_beam

    @property
    def width(self) -> int:
        """Hypotheses (decoder rows) kept per sentence: beam_size for beam search, else 1."""
        return self.beam_size if self.strategy == "beam" and not self.greedy else 1

    @property
    def repetition(self) -> bool:
        """Whether any repetition control is on (they need the tokens generated so far)."""
        return bool(self.no_repeat_ngram_size or self.repetition_penalty != 1.0 or self.repeat_guard)


def register_with_hydra() -> None:
    """Store SearchConfig in Hydra's ConfigStore as `search/default` (a config's defaults list takes it with
    `- search@<node>: default`). Called by whatever composes conf/ (the Hydra apps, the tests) before it does;
    hydra is imported only here, so the CLI and the server never load it."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    node = OmegaConf.structured(SearchConfig)  # typed: a wrong type or an unknown key fails composition
    OmegaConf.set_readonly(node, False)  # a frozen dataclass makes a read-only node; configs override it
    ConfigStore.instance().store(group="search", name="default", node=node)
