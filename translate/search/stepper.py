"""One decoding step over the Seq2Seq interface, with or without the incremental (KV) cache.

Search algorithms only ever call `Stepper.step` and `Stepper.reorder`, so the same greedy, beam and sampling
code runs with the cache (`model.step`, one new token per call) or without it (`model.forward` over the whole
prefix at every step, the way JoeyNMT decodes), which is what scripts/bench_decode.py compares.

Legend: B batch (live rows), S source length, T target prefix length, V target vocabulary.
"""

from __future__ import annotations

import torch

from translate.data.vocab import BOS_ID, PAD_ID


def max_lengths(src: torch.Tensor, max_len_a: float, max_len_b: int, cap: int | None = None) -> torch.Tensor:
    """Per-sentence limit on generated tokens (EOS excluded): a * source length (no PAD) + b."""
    return length_limits((src != PAD_ID).sum(1), max_len_a, max_len_b, cap)  # (B,) lengths include EOS


def length_limits(
    src_lengths: torch.Tensor, max_len_a: float, max_len_b: int, cap: int | None = None
) -> torch.Tensor:
    """(B,) source lengths, EOS included -> (B,) limits floor(a * length + b), at least 1, at most cap."""
    limit = torch.floor(max_len_a * src_lengths.double() + max_len_b).long().clamp(min=1)
    if cap is not None:
        limit = limit.clamp(max=cap)
    return limit  # (B,)


def sequence_limit(model) -> int | None:
    """Longest id sequence the model can take without its EOS (source) or BOS (target): max_positions - 1;
    None = any length (sinusoidal positions, RNNs). Sources beyond it are cut, targets stop at it."""
    return None if model.max_positions is None else model.max_positions - 1


class Stepper:
    """Feeds one token per live row and returns next-token logits; rows can be reordered or dropped.

    vocab (Vs,) sorted target ids (a shortlist, search/shortlist.py): the model projects onto them only
    (model.restrict_output) and step() puts their logits back into the full vocabulary, -inf elsewhere, so
    every search runs unchanged on the restricted distribution. Needs the cache (the model's state holds it).
    """

    def __init__(self, model, src: torch.Tensor, *, use_cache: bool = True, vocab: torch.Tensor | None = None
                 ):  # fmt: skip
        self.model = model
        self.use_cache = use_cache
        self.vocab = vocab
        if use_cache:
            self.state = model.encode(src)
            if vocab is not None:
                state = model.restrict_output(self.state, vocab)
                if state is None:
                    raise ValueError(f"{type(model).__name__} cannot restrict its output projection "
                                     "(restrict_output): decode it without a shortlist")  # fmt: skip
                self.state = state
        else:
            if vocab is not None:
                raise ValueError("a shortlist needs the incremental cache (use_cache=True)")
            self.src = src  # (B, S)
            self.prefix = src.new_empty(src.size(0), 0)  # (B, T)

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B,) -> logits (B, V) for the next position."""
        if self.use_cache:
            logits, self.state = self.model.step(tokens, self.state)
            if self.vocab is None:
                return logits
            full = logits.new_full((logits.size(0), self.model.tgt_vocab_size), float("-inf"))  # (B, V)
            return full.index_copy_(1, self.vocab, logits)  # (B, Vs) -> (B, V)
        self.prefix = torch.cat([self.prefix, tokens[:, None]], dim=1)  # (B, T+1)
        return self.model(self.src, self.prefix)[:, -1]  # (B, T+1, V) -> (B, V)

    def reorder(self, index: torch.Tensor) -> None:
        """Keep rows `index` (B',) in that order: beam reorder/expansion, dropping finished rows."""
        if self.use_cache:
            self.state = self.model.reorder_state(self.state, index)
        else:
            self.src = self.src.index_select(0, index)
            self.prefix = self.prefix.index_select(0, index)


def bos(batch_size: int, device) -> torch.Tensor:
    return torch.full((batch_size,), BOS_ID, dtype=torch.long, device=device)


def mask_specials(logits: torch.Tensor) -> torch.Tensor:
    """Never generate PAD or BOS. logits (B, V), float, edited in place and returned."""
    logits[:, PAD_ID] = float("-inf")
    logits[:, BOS_ID] = float("-inf")
    return logits
