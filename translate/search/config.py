"""SearchConfig: the one home of the decoding settings (strategy, beam, length penalty, length limit,
sampling, repetition controls, batch size).

Validation, evaluation, the CLI, the server, the benchmarks and anything else that decodes build one of these;
its defaults are the project's decoding defaults, defined nowhere else. The Hydra apps compose it as the
structured config `search/default` (register_with_hydra): conf/evaluate.yaml's `search` node and
conf/train.yaml's `trainer.val_search` start from it, typed, and override only what they show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

STRATEGIES = ("beam", "greedy", "sample")
# beam search's stopping rule, the default first: exact = a sentence stops when no live beam can beat its
# nbest-th ended hypothesis; k_ended = once beam_size hypotheses have ended (CTranslate2's patience 1)
STOPPINGS = ("exact", "k_ended")
GUARD_NGRAM = 4  # repeat_guard watches n-grams of 1..GUARD_NGRAM tokens
# The bounds of every field (inclusive). Each is far beyond any useful setting and keeps every number the
# search computes finite: the length penalty ((5 + len) / 6) ** alpha stays below 1e30 for any length the
# limits allow, whatever entry point (a flag, a Hydra config, an HTTP request) gives the value.
BEAM_MAX = 256
ALPHA_MAX = 5.0
MAX_LEN_A_MAX = 10.0
MAX_LEN_B_MAX = 10_000
BATCH_TOKENS_MAX = 1_000_000
TOPK_MAX = 1_000_000  # sampling_topk: at least any vocabulary
TEMPERATURE_MAX = 100.0
PENALTY_MAX = 100.0
SEED_MAX = 2**63 - 1
# Every repetition control switched off (plain search: what a reference such as an exhaustive enumeration,
# transformers' generate() or CTranslate2's beam search computes): SearchConfig(**REPETITION_OFF, ...).
REPETITION_OFF = {"no_repeat_ngram_size": 0, "repetition_penalty": 1.0, "repeat_guard": 0}


@dataclass(frozen=True)
class SearchConfig:
    """`strategy` picks the search (translate.search.decode dispatches on it): beam (beam_size 1 with nbest 1
    runs greedy, as greedy does), greedy, or sample (one draw per sentence from the model's distribution,
    filtered by the sampling_* fields; CTranslate2's names and meanings). greedy and sample keep one
    hypothesis per sentence: beam_size does not apply to them and nbest must be 1.

    stopping (beam): exact (the default) stops a sentence only when no live beam can still beat its nbest-th
    ended hypothesis, so the beam's best is found whatever it would end later; k_ended stops it once
    beam_size hypotheses have ended, the rule of CTranslate2 (patience 1) and fairseq: shorter searches, and
    the same algorithm as CTranslate2's beam (translate/search/README.md#the-stopping-rule).

    Repetition controls (every strategy; CTranslate2's names and meanings, so its engine maps them one to
    one):
    no_repeat_ngram_size n > 0 forbids any n-gram of the target twice; repetition_penalty p > 1 divides the
    positive logits (multiplies the negative ones) of every token generated so far. repeat_guard R > 0 (ours)
    ends a hypothesis (forces EOS) once it holds R copies in a row of one token or of one n-gram of up to
    GUARD_NGRAM tokens. The defaults (repeat_guard 3, the other two off) are the setting chosen on the default
    model's dev set by scripts/measure_search.py's rule (translate/search/README.md#repetition-controls).
    """

    strategy: str = "beam"  # beam | greedy | sample
    beam_size: int = 5  # strategy beam: 1 = greedy; 1..BEAM_MAX
    stopping: str = "exact"  # strategy beam: exact | k_ended (STOPPINGS)
    nbest: int = 1  # hypotheses returned per sentence, 1..beam_size (1 for greedy and sample)
    alpha: float = 0.6  # GNMT length penalty ((5 + len) / 6) ** alpha, 0..ALPHA_MAX; 0 = raw log-probability
    max_len_a: float = 1.5  # output length limit: a * source length + b (subwords); a in 0..MAX_LEN_A_MAX
    max_len_b: int = 10  # 0..MAX_LEN_B_MAX
    batch_tokens: int = 4000  # padded source tokens per decoding batch, 1..BATCH_TOKENS_MAX
    sampling_topk: int = 0  # sample: draw among the k most likely tokens; 0 = all, 1 = greedy
    sampling_topp: float = 1.0  # sample: among the smallest set of most likely tokens reaching this mass
    sampling_temperature: float = 1.0  # sample: logits / temperature
    seed: int = 0  # sample: a sentence's draws depend on this seed and its source only (reproducible)
    no_repeat_ngram_size: int = 0  # forbid repeating any n-gram of this size; 0 = off
    repetition_penalty: float = 1.0  # > 1 penalises tokens already generated; 1 = off
    repeat_guard: int = 3  # end a hypothesis at this many copies in a row of a token or n-gram; 0 = off

    def __post_init__(self) -> None:
        """Errors start with the field's name, so each entry point can name its own option. Every field is
        checked for its type (an int field takes no bool or float, a float field no NaN or infinity) and its
        range."""
        if not isinstance(self.strategy, str) or self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {'|'.join(STRATEGIES)}, got {self.strategy!r}")
        _integer("beam_size", self.beam_size, 1, BEAM_MAX)
        if not isinstance(self.stopping, str) or self.stopping not in STOPPINGS:
            raise ValueError(f"stopping must be one of {'|'.join(STOPPINGS)}, got {self.stopping!r}")
        if self.strategy != "beam" and self.nbest != 1:
            raise ValueError(f"nbest must be 1 with strategy {self.strategy}, got {self.nbest}")
        _integer("nbest", self.nbest, 1, self.beam_size, "beam_size")
        _real("alpha", self.alpha, 0.0, ALPHA_MAX)
        _real("max_len_a", self.max_len_a, 0.0, MAX_LEN_A_MAX)
        _integer("max_len_b", self.max_len_b, 0, MAX_LEN_B_MAX)
        if self.max_len_a == self.max_len_b == 0:
            raise ValueError("max_len_a and max_len_b must not both be 0 (no output could be generated)")
        _integer("batch_tokens", self.batch_tokens, 1, BATCH_TOKENS_MAX)
        _integer("sampling_topk", self.sampling_topk, 0, TOPK_MAX)
        _real("sampling_topp", self.sampling_topp, 0.0, 1.0)
        if self.sampling_topp == 0:
            raise ValueError("sampling_topp must be in (0, 1], got 0")
        _real("sampling_temperature", self.sampling_temperature, 0.0, TEMPERATURE_MAX)
        if self.sampling_temperature == 0:
            raise ValueError("sampling_temperature must be > 0, got 0")
        _integer("seed", self.seed, 0, SEED_MAX)
        _integer("no_repeat_ngram_size", self.no_repeat_ngram_size, 0, MAX_LEN_B_MAX)
        _real("repetition_penalty", self.repetition_penalty, 1.0, PENALTY_MAX)
        _integer("repeat_guard", self.repeat_guard, 0, MAX_LEN_B_MAX)
        if self.repeat_guard == 1:
            raise ValueError("repeat_guard must be 0 (off) or >= 2, got 1")

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
    def ended_kept(self) -> int:
        """How many ended hypotheses' scores beam search keeps per sentence for its stopping rule: the nbest
        best (exact: the nbest-th is the bound to beat), or beam_size (k_ended: the sentence stops at that
        many)."""
        return self.beam_size if self.stopping == "k_ended" else self.nbest

    @property
    def repetition(self) -> bool:
        """Whether any repetition control is on (they need the tokens generated so far)."""
        return bool(self.no_repeat_ngram_size or self.repetition_penalty != 1.0 or self.repeat_guard)


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
