"""Command-line flags for SearchConfig, shared by `translate` and `translate serve`: one definition per flag.

Each flag maps one to one onto a SearchConfig field (its dest is the field's name) with SearchConfig's
default, and `search_from_args` builds the config back; a SearchConfig error names the field first, and
`flag_error` turns it into the flag's name for a one-line usage error.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from translate.search.config import SearchConfig

# field -> (flag, type, help without the default)
FLAGS = {
    "strategy": ("--strategy", str, "beam | greedy | sample"),
    "beam_size": ("--beam", int, "beam size; 1 = greedy"),
    "stopping": ("--stopping", str, "beam: exact (no live beam can win) | k_ended (once K have ended)"),
    "nbest": ("--nbest", int, "translations per line, tab-separated"),
    "alpha": ("--alpha", float, "length penalty ((5+len)/6)^alpha"),
    "max_len_a": ("--max-len-a", float, "length limit a * src + b: a"),
    "max_len_b": ("--max-len-b", int, "length limit a * src + b: b"),
    "batch_tokens": ("--batch-tokens", int, "source tokens per batch"),
    "sampling_topk": ("--sampling-topk", int, "--strategy sample: among the k likeliest; 0 = all"),
    "sampling_topp": ("--sampling-topp", float, "--strategy sample: nucleus mass"),
    "sampling_temperature": ("--sampling-temperature", float, "--strategy sample: temperature"),
    "seed": ("--seed", int, "--strategy sample: seed (a sentence's sample depends on it and the sentence)"),
    "no_repeat_ngram_size": ("--no-repeat-ngram-size", int, "forbid repeating n-grams of this size; 0 = off"),
    "repetition_penalty": ("--repetition-penalty", float, "> 1 penalises generated tokens; 1 = off"),
    "repeat_guard": ("--repeat-guard", int, "end a hypothesis at N copies in a row of a 1-4-gram; 0 = off"),
}


def add_search_flags(
    p: argparse.ArgumentParser, fields: Sequence[str] = tuple(FLAGS), prefix: str = ""
) -> None:
    """Add the flags of `fields`; `prefix` starts each help text (e.g. "default" for a server's per-request
    defaults)."""
    d = SearchConfig()
    for field in fields:
        flag, kind, text = FLAGS[field]
        text = f"{prefix} {text}" if prefix else text
        metavar = flag[2:].upper().replace("-", "_")  # --beam BEAM, as before
        p.add_argument(flag, dest=field, type=kind, default=getattr(d, field), metavar=metavar,
                       help=f"{text} (default: {getattr(d, field)})")  # fmt: skip


def search_from_args(args: argparse.Namespace, fields: Sequence[str] = tuple(FLAGS)) -> SearchConfig:
    """The SearchConfig of the parsed flags (raises its ValueError: see flag_error)."""
    return SearchConfig(**{field: getattr(args, field) for field in fields})


def flag_error(e: ValueError) -> str:
    """A config error that starts with its field's name ("beam_size must be ...") -> the same with the flag's
    name: a search flag's from FLAGS, any other field as --field-name (the servers' options)."""
    field, rest = str(e).split(" ", 1)
    flag = FLAGS[field][0] if field in FLAGS else "--" + field.replace("_", "-")
    return f"{flag} {rest}"
