"""Greedy decoding: the arg-max token at every step, finished sentences dropped from the batch.

Legend: B batch (live rows), S source length, V target vocabulary.
"""

from __future__ import annotations

import torch

from translate.data.vocab import EOS_ID
from translate.search.config import SearchConfig
from translate.search.stepper import Stepper, bos, mask_specials, max_lengths, sequence_limit


@torch.no_grad()
def greedy_search(
    model, src: torch.Tensor, search: SearchConfig, *, use_cache: bool = True
) -> list[list[int]]:
    """src (B, S) with EOS and PAD -> per sentence the generated ids, without BOS/EOS.

    Of `search` only the length limit applies: a sentence stops at EOS or after max_len_a * source length
    + max_len_b tokens; its row then leaves the batch (model.reorder_state), so the work shrinks as sentences
    end.
    """
    return decode_loop(model, src, lambda logits: logits.argmax(-1), search, use_cache)


def decode_loop(model, src, choose, search: SearchConfig, use_cache: bool) -> list[list[int]]:
    """Shared by greedy and sampling: `choose(logits (B, V)) -> tokens (B,)` picks next tokens."""
    B = src.size(0)
    limit = max_lengths(src, search.max_len_a, search.max_len_b, sequence_limit(model))  # (B,)
    stepper = Stepper(model, src, use_cache=use_cache)
    out: list[list[int]] = [[] for _ in range(B)]
    alive = torch.arange(B, device=src.device)  # (B,) original row of each live row
    tokens = bos(B, src.device)
    t = 0
    while alive.numel() > 0:
        logits = mask_specials(stepper.step(tokens).float())  # (B, V)
        nxt = choose(logits)  # (B,)
        nxt = torch.where(limit[alive] <= t, torch.full_like(nxt, EOS_ID), nxt)  # length limit reached
        ended = nxt == EOS_ID
        for row, tok in zip(alive[~ended].tolist(), nxt[~ended].tolist()):
            out[row].append(tok)
        t += 1
        if ended.any():
            keep = (~ended).nonzero().squeeze(1)  # (B',)
            alive, nxt = alive[keep], nxt[keep]
            if keep.numel() > 0:
                stepper.reorder(keep)
        tokens = nxt
    return out
