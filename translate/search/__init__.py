"""Search over the Seq2Seq interface: greedy, beam and sampling, plus whole-dataset translation."""

from translate.search.beam import Hypothesis, SearchError, beam_search, length_penalty
from translate.search.config import SearchConfig
from translate.search.dataset import pad_sources, translate_dataset, translate_ids
from translate.search.greedy import greedy_search
from translate.search.sampling import filter_logits, sample
from translate.search.stepper import sequence_limit

__all__ = [
    "Hypothesis",
    "SearchConfig",
    "SearchError",
    "beam_search",
    "filter_logits",
    "greedy_search",
    "length_penalty",
    "pad_sources",
    "sample",
    "sequence_limit",
    "translate_dataset",
    "translate_ids",
]
