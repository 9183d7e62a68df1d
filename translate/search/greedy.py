"""One hypothesis per sentence: greedy search (the arg-max token) and sampling share this loop, finished
sentences dropped from the batch. The token chooser (sampling.token_chooser) is the only difference.

Legend: B batch (live rows), S source length, T generated length, V target vocabulary.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from translate.data.vocab import EOS_ID, PAD_ID
from translate.search.config import SearchConfig
from translate.search.repetition import control_repetition, end_repeats
from translate.search.sampling import token_chooser
from translate.search.stepper import Stepper, bos, mask_specials, max_lengths, sequence_limit


@torch.no_grad()
def greedy_search(
    model, src: torch.Tensor, search: SearchConfig, *, use_cache: bool = True
) -> list[list[int]]:
    """src (B, S) with EOS and PAD -> per sentence the generated ids, without BOS/EOS.

    Of `search` the length limit and the repetition controls apply: a sentence stops at EOS or after
    max_len_a * source length + max_len_b tokens; its row then leaves the batch (model.reorder_state), so
    the work shrinks as sentences end.
    """
    return decode_loop(model, src, replace(search, strategy="greedy", nbest=1), use_cache)


@torch.no_grad()
def sample(model, src: torch.Tensor, search: SearchConfig, *, use_cache: bool = True) -> list[list[int]]:
    """src (B, S) -> one sampled translation per sentence (ids without BOS/EOS), drawn with search's
    sampling_* fields and seed (sampling_topk=1 is greedy)."""
    return decode_loop(model, src, replace(search, strategy="sample", nbest=1), use_cache)


def source_rows(src: torch.Tensor) -> list[list[int]]:
    """(B, S) ids with EOS and PAD -> per row its source ids without EOS/PAD (what seeds a sample)."""
    return [[t for t in row if t not in (EOS_ID, PAD_ID)] for row in src.tolist()]


def decode_loop(model, src, search: SearchConfig, use_cache: bool, vocab=None) -> list[list[int]]:
    """Greedy or sampling (search.strategy): per row the chooser picks the next token from its logits."""
    B = src.size(0)
    limit = max_lengths(src, search.max_len_a, search.max_len_b, sequence_limit(model))  # (B,)
    choose = token_chooser(search, src.device)
    choose.add(source_rows(src))
    stepper = Stepper(model, src, use_cache=use_cache, vocab=vocab)
    out: list[list[int]] = [[] for _ in range(B)]
    alive = torch.arange(B, device=src.device)  # (B,) original row of each live row
    history = src.new_empty(B, 0)  # (B, T) live rows' tokens, kept when a repetition control needs them
    tokens = bos(B, src.device)
    t = 0
    while alive.numel() > 0:
        logits = mask_specials(stepper.step(tokens).float())  # (B, V)
        if search.repetition:
            lengths = torch.full((alive.numel(),), t, dtype=torch.long, device=src.device)
            logits = control_repetition(logits, history, lengths, search)
            logits = end_repeats(logits, history, lengths, search)
        nxt = choose(logits)  # (B,)
        nxt = torch.where(limit[alive] <= t, torch.full_like(nxt, EOS_ID), nxt)  # length limit reached
        ended = nxt == EOS_ID
        for row, tok in zip(alive[~ended].tolist(), nxt[~ended].tolist()):
            out[row].append(tok)
        t += 1
        if search.repetition:
            history = torch.cat([history, nxt[:, None]], 1)  # (B, T+1)
        if ended.any():
            keep = (~ended).nonzero().squeeze(1)  # (B',)
            alive, nxt, history = alive[keep], nxt[keep], history[keep]
            choose.keep(keep.tolist())
            if keep.numel() > 0:
                stepper.reorder(keep)
        tokens = nxt
    return out
