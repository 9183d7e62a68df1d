"""Search over the Seq2Seq interface: one `decode` dispatch over greedy, beam, sampling and constrained beam
search, plus whole-dataset translation."""

from translate.search.beam import Hypothesis, SearchError, beam_search, length_penalty
from translate.search.config import SearchConfig
from translate.search.dataset import pad_sources, translate_dataset, translate_ids
from translate.search.decode import decode
from translate.search.greedy import greedy_search, sample
from translate.search.sampling import filter_logits
from translate.search.stepper import sequence_limit

__all__ = [
    "Hypothesis",
    "SearchConfig",
    "SearchError",
    "beam_search",
    "decode",
    "filter_logits",
    "greedy_search",
    "length_penalty",
    "pad_sources",
    "sample",
    "sequence_limit",
    "translate_dataset",
    "translate_ids",
]
