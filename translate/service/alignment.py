"""The cross-attention alignment of one translation as JSON, for /v1/translate and the web page's heatmap.

The matrix is the one Bahdanau et al. (2014) draw in Fig. 3, computed by translate.evaluation.alignment:
teacher-forced attention of the model over its own translation, heads (and Transformer layers) averaged;
rows are target pieces, columns source pieces, EOS last on both sides. The answer is compact: the piece
matrix once, and for each piece the index of its word (source_word_of, target_word_of), from which the
word-level matrix follows (sum a word's columns, average its rows: rows still sum to 1; the page does this).

Its size is bounded before any decoding (cells: units x n-best x (target limit + 1) x (source pieces + 1)
against the server's max_alignment_cells, a 413 naming each factor), and the work stops between hypotheses
when the request's deadline passes or its client leaves (alignments(..., stop)).
"""

from __future__ import annotations

import math
import threading

from translate.evaluation.alignment import alignment_maps, words_and_eos
from translate.search import SearchConfig
from translate.search.stepper import sequence_limit


class AlignmentStopped(Exception):
    """The request's deadline passed or its client left while its alignments were being computed."""


def alignment_cells(units: list[list[int]], search: SearchConfig, model) -> tuple[int, int]:
    """-> (weights the alignments of these units can hold at most, the longest target limit): per unit nbest
    hypotheses of at most its length limit (+ EOS) x its source pieces (+ EOS)."""
    cap = sequence_limit(model) if model is not None else None
    cells, longest = 0, 0
    for ids in units:
        limit = max(1, math.floor(search.max_len_a * (len(ids) + 1) + search.max_len_b))
        limit = min(limit, cap) if cap is not None else limit
        longest = max(longest, limit)
        cells += search.nbest * (limit + 1) * (len(ids) + 1)
    return cells, longest


def alignment_json(translator, src_ids: list[int], tgt_ids: list[int], digits: int = 4) -> dict | None:
    """-> {source, target (pieces + "</s>"), weights (T x S), source_words, target_words, source_word_of (S),
    target_word_of (T)}, or None for a model without attention (RNNencdec) or an engine without a PyTorch
    model (a CTranslate2 export)."""
    if translator.model is None:
        return None
    maps = alignment_maps(translator.model, list(src_ids), list(tgt_ids))
    if not maps:
        return None
    w = maps.get("mean", next(iter(maps.values())))  # (T, S)
    tok = translator.tokenizer
    src = [tok.id_to_piece(i, "src") for i in src_ids]
    tgt = [tok.id_to_piece(i, "tgt") for i in tgt_ids]
    src_groups, src_words = words_and_eos(src)
    tgt_groups, tgt_words = words_and_eos(tgt)
    return {"source": src + ["</s>"], "target": tgt + ["</s>"],
            "weights": [[round(float(x), digits) for x in row] for row in w.tolist()],
            "source_words": src_words, "target_words": tgt_words,
            "source_word_of": word_of(src_groups), "target_word_of": word_of(tgt_groups)}  # fmt: skip


def word_weights(a: dict) -> list[list[float]]:
    """The word matrix (target words x source words) of an alignment_json answer: a word's source columns
    summed, its target rows averaged (what the page computes in app.js)."""
    rows = [[0.0] * len(a["source_words"]) for _ in a["target_words"]]
    count = [0] * len(a["target_words"])
    for t, row in enumerate(a["weights"]):
        r = a["target_word_of"][t]
        count[r] += 1
        for s, w in enumerate(row):
            rows[r][a["source_word_of"][s]] += w
    return [[w / max(1, n) for w in row] for row, n in zip(rows, count)]


def word_of(groups: list[list[int]]) -> list[int]:
    """Word groups (piece indices) -> for each piece, its word's index."""
    out = [0] * sum(len(g) for g in groups)
    for i, group in enumerate(groups):
        for piece in group:
            out[piece] = i
    return out


def alignments(translator, units: list[list[int]], hyps: list[list], stop: threading.Event) -> list[list]:
    """Per unit, per hypothesis its alignment_json; raises AlignmentStopped as soon as `stop` is set (checked
    before each hypothesis)."""
    out = []
    for ids, unit_hyps in zip(units, hyps):
        row = []
        for hyp in unit_hyps:
            if stop.is_set():
                raise AlignmentStopped()
            row.append(alignment_json(translator, ids, hyp.tokens))
        out.append(row)
    return out
