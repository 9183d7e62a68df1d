"""Beam search's top-k over every live beam's next tokens, without sorting K x V candidates per sentence; and
greedy search's arg-max, by the same chunk maxima.

Each step beam search wants the 2K best of scores[b, k] + logp[b, k, v] over k and v (K beams, V tokens). The
plain way (`candidates_topk_reference`) adds the scores to all K x V log-probabilities and takes topk over
them: on the CPU torch's topk copies and partially sorts every element of the row (scalar code), which
costs as much as the output projection at the default model's beam 5 batches (translate/search/README.md,
"Where a decoding step's time goes"). `candidates_topk` does the same selection in three small passes: the
maximum of each chunk of C consecutive tokens (vectorized), the k best chunks per sentence by score + chunk
maximum, and topk over the k x C values of those chunks only. The k best candidates lie in the k best chunks
(a candidate outside them has k chunks above it, each holding a better candidate), and every value is the
same float sum scores + logp as the reference computes, so the top values are identical and the indices are
the same up to the order of exactly tied values.

`argmax` is greedy search's choice: torch's CPU argmax over a row is a scalar loop (1.0 ms for (100, 8000)
on the AMD EPYC Zen 2 against 0.06 ms for the vectorized amax), so it takes the first chunk holding the
row's maximum (amax per chunk, then argmax over n chunk maxima) and the first maximum inside it: the first
maximal index of the row, as torch's argmax returns (NaN counts as the maximum in both).

Legend: B sentences, K beams, V target vocabulary, C chunk, n = V / C chunks per beam, k candidates kept,
R rows.
"""

from __future__ import annotations

import functools

import torch

CHUNK = 64  # tokens per chunk: V = 8,000 gives 125 chunks per beam
MIN_CHUNKS = 8  # fewer chunks than this per beam: the plain topk is as cheap


@functools.cache
def chunk_size(vocab: int, k: int, beams: int) -> int | None:
    """The chunk (a divisor of V near CHUNK) candidates_topk uses for this shape, or None for the reference:
    V without such a divisor, or too few chunks for the three passes to pay."""
    for size in sorted(range(CHUNK // 2, 2 * CHUNK + 1), key=lambda c: (abs(c - CHUNK), c)):
        if vocab % size == 0 and vocab // size >= MIN_CHUNKS and beams * (vocab // size) > k:
            return size
    return None


def candidates_topk_reference(scores: torch.Tensor, logp: torch.Tensor, k: int):
    """scores (B, K), logp (B, K, V) -> (values, flat index into K*V), each (B, k): the k best sums."""
    B, K, V = logp.shape
    return (scores[:, :, None] + logp).view(B, K * V).topk(k, dim=-1)  # (B, k) each


def candidates_topk(scores: torch.Tensor, logp: torch.Tensor, k: int):
    """The same as candidates_topk_reference (values identical; indices up to ties), by chunk maxima."""
    B, K, V = logp.shape
    C = chunk_size(V, k, K)
    if C is None or not logp.is_contiguous():
        return candidates_topk_reference(scores, logp, k)
    n = V // C
    chunks = logp.view(B, K * n, C)  # (B, K*n, C) chunk j belongs to beam j // n
    bounds = chunks.amax(-1).view(B, K, n) + scores[:, :, None]  # (B, K, n) the best sum in each chunk
    best_chunk = bounds.view(B, K * n).topk(k, dim=-1).indices  # (B, k) the chunks that hold the k best
    picked = chunks.gather(1, best_chunk[:, :, None].expand(-1, -1, C))  # (B, k, C)
    picked = picked + scores.gather(1, best_chunk // n)[:, :, None]  # (B, k, C) the same sums
    values, pos = picked.view(B, k * C).topk(k, dim=-1)  # (B, k)
    index = best_chunk.gather(1, pos // C) * C + pos % C  # (B, k) into K*V: chunk * C + offset
    return values, index


def argmax_reference(logits: torch.Tensor) -> torch.Tensor:
    """(R, V) -> (R,) torch's argmax over the last dimension: the first maximal index of each row."""
    return logits.argmax(-1)


def argmax(logits: torch.Tensor) -> torch.Tensor:
    """(R, V) -> (R,) the same indices as argmax_reference (ties: the first; NaN: the first NaN), from the
    chunk maxima on the CPU; torch's own argmax elsewhere and for shapes without a chunk size."""
    R, V = logits.shape
    C = chunk_size(V, 1, 1)
    if C is None or logits.device.type != "cpu" or not logits.is_contiguous():
        return argmax_reference(logits)
    chunks = logits.view(R, V // C, C)  # (R, n, C)
    first = chunks.amax(-1).argmax(-1)  # (R,) the first chunk holding the row's maximum (or first NaN)
    inside = chunks[torch.arange(R, device=logits.device), first].argmax(-1)  # (R,) its first maximum
    return first * C + inside
