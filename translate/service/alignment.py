"""The cross-attention alignment of one translation as JSON, for /v1/translate and the web page's heatmap.

The matrix is the one Bahdanau et al. (2014) draw in Fig. 3, computed by translate.evaluation.alignment:
teacher-forced attention of the model over its own translation, heads (and Transformer layers) averaged;
rows are target pieces, columns source pieces, EOS last on both sides; the word-level matrix sums a word's
pieces' columns and averages its rows, so rows still sum to 1.
"""

from __future__ import annotations

from translate.evaluation.alignment import alignment_maps, to_words, words_and_eos


def alignment_json(translator, src_ids: list[int], tgt_ids: list[int], digits: int = 4) -> dict | None:
    """-> {source, target (pieces + "</s>"), weights (T x S), source_words, target_words, word_weights
    (T' x S')}, or None for a model without attention (RNNencdec) or an engine without a PyTorch model
    (a CTranslate2 export)."""
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
    words = to_words(w, src_groups, tgt_groups)  # (T', S')

    def rounded(m):
        return [[round(float(x), digits) for x in row] for row in m.tolist()]

    return {"source": src + ["</s>"], "target": tgt + ["</s>"], "weights": rounded(w),
            "source_words": src_words, "target_words": tgt_words, "word_weights": rounded(words)}  # fmt: skip
