"""Greedy, beam and sampling over a tiny deterministic recurrent Seq2Seq, checked exhaustively."""

import itertools
import math

import pytest
import torch
from torch import nn

from translate.data.vocab import BOS_ID, EOS_ID, PAD_ID
from translate.search import SearchConfig, beam_search, filter_logits, greedy_search, length_penalty, sample

pytestmark = pytest.mark.usefixtures("one_thread")


class ToySeq2Seq(nn.Module):
    """A tiny recurrent decoder conditioned on the mean source embedding; implements the Seq2Seq interface."""

    max_positions = None  # any length

    def __init__(self, vocab: int = 6, dim: int = 8, seed: int = 0, sharpness: float = 3.0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.src_emb = nn.Parameter(torch.randn(vocab, dim, generator=g))
        self.tgt_emb = nn.Parameter(torch.randn(vocab, dim, generator=g))
        self.rec = nn.Parameter(torch.randn(dim, dim, generator=g) / math.sqrt(dim))
        self.out = nn.Parameter(torch.randn(dim, vocab, generator=g) * sharpness / math.sqrt(dim))
        self.calls = {"step": 0, "forward": 0}

    def encode(self, src):  # (B, S) -> state
        mask = (src != PAD_ID).float()[:, :, None]
        ctx = (self.src_emb[src] * mask).sum(1) / mask.sum(1)  # (B, E)
        return {"ctx": ctx, "h": torch.zeros_like(ctx)}

    def step(self, tokens, state):  # (B,) -> (B, V)
        self.calls["step"] += 1
        h = torch.tanh(self.tgt_emb[tokens] + state["h"] @ self.rec + state["ctx"])
        return h @ self.out, {"ctx": state["ctx"], "h": h}

    def reorder_state(self, state, index):
        return {k: v.index_select(0, index) for k, v in state.items()}

    def forward(self, src, tgt_in):  # (B, S), (B, T) -> (B, T, V)
        self.calls["forward"] += 1
        state, out = self.encode(src), []
        for t in range(tgt_in.size(1)):
            h = torch.tanh(self.tgt_emb[tgt_in[:, t]] + state["h"] @ self.rec + state["ctx"])
            state = {"ctx": state["ctx"], "h": h}
            out.append(h @ self.out)
        return torch.stack(out, 1)


def make_src(rows):
    S = max(len(r) for r in rows) + 1
    src = torch.full((len(rows), S), PAD_ID)
    for i, r in enumerate(rows):
        src[i, : len(r) + 1] = torch.tensor(r + [EOS_ID])
    return src


DEFAULTS = SearchConfig()
SRC = make_src([[4, 5, 4], [5], [4, 4, 5, 5, 4], [1, 4]])
CONTENT = [1, 4, 5]  # the ids that are neither PAD, BOS nor EOS in a 6-token vocabulary


def sequence_logprob(model, src_row, tokens):
    """log P(tokens + EOS | src) by teacher forcing."""
    tgt_in = torch.tensor([[BOS_ID] + tokens])
    logits = model(src_row[None], tgt_in)[0].float()
    logits[:, PAD_ID] = logits[:, BOS_ID] = float("-inf")
    logp = logits.log_softmax(-1)
    return sum(logp[i, tok].item() for i, tok in enumerate(tokens + [EOS_ID]))


def exhaustive_best(model, src_row, max_len, alpha):
    best = None
    for n in range(max_len + 1):
        for seq in itertools.product(CONTENT, repeat=n):
            s = sequence_logprob(model, src_row, list(seq)) / length_penalty(n + 1, alpha)
            if best is None or s > best[1]:
                best = (list(seq), s)
    return best


def test_greedy_matches_stepwise_argmax_and_respects_length_limit():
    model = ToySeq2Seq(sharpness=1.0)
    out = greedy_search(model, SRC, SearchConfig(max_len_a=0.0, max_len_b=4))
    assert len(out) == SRC.size(0)
    for i, toks in enumerate(out):
        assert len(toks) <= 4 and EOS_ID not in toks and BOS_ID not in toks and PAD_ID not in toks
        # Re-derive each choice by teacher forcing the prefix.
        logits = model(SRC[i : i + 1], torch.tensor([[BOS_ID] + toks]))[0]
        logits[:, PAD_ID] = logits[:, BOS_ID] = float("-inf")
        assert logits[: len(toks)].argmax(-1).tolist() == toks
        if len(toks) < 4:
            assert logits[len(toks)].argmax().item() == EOS_ID


def test_greedy_rows_do_not_depend_on_batch_company():
    model = ToySeq2Seq()
    together = greedy_search(model, SRC, SearchConfig(max_len_b=6))
    rows = [SRC[i : i + 1, : int((SRC[i] != PAD_ID).sum())] for i in range(4)]
    alone = [greedy_search(model, row, SearchConfig(max_len_b=6))[0] for row in rows]
    assert together == alone


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
def test_beam_one_holds_greedy_and_never_scores_below_it(alpha):
    """Beam 1 follows greedy up to greedy's EOS, which it keeps as a finished hypothesis; it goes on only
    while its live beam can still win. With alpha = 0 that beam is already below the EOS, so beam 1 is greedy;
    with alpha > 0 it may find a better-scored, longer translation (tests/search/test_beam.py)."""
    model = ToySeq2Seq(sharpness=1.5)
    greedy = greedy_search(model, SRC, SearchConfig(max_len_b=7))
    beam = beam_search(model, SRC, SearchConfig(beam_size=1, alpha=alpha, max_len_b=7))
    for i, (nb, g) in enumerate(zip(beam, greedy)):
        row = SRC[i, : int((SRC[i] != PAD_ID).sum())]
        assert nb[0].score >= sequence_logprob(model, row, g) / length_penalty(len(g) + 1, alpha) - 1e-5
        if alpha == 0.0:
            assert nb[0].tokens == g


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_wide_beam_finds_exact_best(alpha):
    model = ToySeq2Seq(sharpness=1.0, seed=3)
    max_len = 4
    hyps = beam_search(
        model, SRC, SearchConfig(beam_size=130, alpha=alpha, max_len_a=0.0, max_len_b=max_len, nbest=3)
    )
    found_different = False
    greedy = greedy_search(model, SRC, SearchConfig(max_len_a=0.0, max_len_b=max_len))
    for i in range(SRC.size(0)):
        row = SRC[i, : int((SRC[i] != PAD_ID).sum())]
        best_tokens, best_score = exhaustive_best(model, row, max_len, alpha)
        assert hyps[i][0].tokens == best_tokens
        assert hyps[i][0].score == pytest.approx(best_score, abs=1e-4)
        assert hyps[i][0].logprob == pytest.approx(sequence_logprob(model, row, best_tokens), abs=1e-4)
        found_different |= greedy[i] != best_tokens
    assert found_different, "the toy should make greedy search miss the best sequence somewhere"


def test_nbest_sorted_distinct_and_scored():
    model = ToySeq2Seq(sharpness=1.0)
    hyps = beam_search(model, SRC, SearchConfig(beam_size=5, alpha=0.6, nbest=5, max_len_b=6))
    for i, nb in enumerate(hyps):
        assert len(nb) == 5
        scores = [h.score for h in nb]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.tokens) for h in nb}) == 5
        row = SRC[i, : int((SRC[i] != PAD_ID).sum())]
        for h in nb:
            lp = length_penalty(len(h.tokens) + 1, 0.6)
            assert h.score == pytest.approx(sequence_logprob(model, row, h.tokens) / lp, abs=1e-4)


def test_beam_without_cache_matches_cache():
    model = ToySeq2Seq(sharpness=1.0)
    with_cache = beam_search(model, SRC, SearchConfig(beam_size=4, nbest=2, max_len_b=5))
    model.calls = {"step": 0, "forward": 0}
    without = beam_search(model, SRC, SearchConfig(beam_size=4, nbest=2, max_len_b=5), use_cache=False)
    assert model.calls["step"] == 0 and model.calls["forward"] > 0
    assert [[h.tokens for h in nb] for nb in with_cache] == [[h.tokens for h in nb] for nb in without]
    assert greedy_search(model, SRC, DEFAULTS, use_cache=False) == greedy_search(model, SRC, DEFAULTS)


def test_finished_sentences_leave_the_batch():
    class Counting(ToySeq2Seq):
        def step(self, tokens, state):
            self.rows.append(tokens.numel())
            return super().step(tokens, state)

    model = Counting()
    model.rows = []
    out = greedy_search(model, SRC, SearchConfig(max_len_b=8))
    lengths = sorted(len(o) for o in out)
    # Row count at step t = number of sentences with more than t-1 generated tokens.
    assert model.rows == [sum(n >= t for n in lengths) for t in range(len(model.rows))]
    assert model.rows[-1] < SRC.size(0) or len(set(lengths)) == 1


def test_sampling_top_k_one_is_greedy():
    model = ToySeq2Seq()
    greedy = greedy_search(model, SRC, DEFAULTS)
    search = SearchConfig(strategy="sample", nbest=1, sampling_topk=1, sampling_temperature=0.7, seed=1)
    assert sample(model, SRC, search) == greedy


def test_sampling_is_seeded_and_varies():
    model = ToySeq2Seq(sharpness=0.5)

    def draw(seed):
        return sample(model, SRC, SearchConfig(strategy="sample", nbest=1, seed=seed))

    a, b = draw(5), draw(5)
    c = [draw(s) for s in range(6, 10)]
    assert a == b
    assert any(x != a for x in c)


def test_a_sample_depends_on_its_sentence_and_seed_only():
    """The batch a sentence shares, and its row in it, do not change its draws (the server's continuous
    batching and the CLI's batches give the same sample)."""
    model = ToySeq2Seq(sharpness=0.5)
    search = SearchConfig(strategy="sample", nbest=1, seed=3)
    together = sample(model, SRC, search)
    alone = [sample(model, SRC[i : i + 1], search)[0] for i in range(SRC.size(0))]
    reversed_rows = sample(model, SRC.flip(0), search)[::-1]
    assert together == alone == reversed_rows


def test_top_p_keeps_the_smallest_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.05, 0.15, 0.3, 0.5]]))
    kept = torch.isfinite(filter_logits(logits, top_p=0.7))
    assert kept.tolist() == [[True, True, False, False], [False, False, True, True]]
    kept = torch.isfinite(filter_logits(logits, top_p=0.5))
    assert kept.tolist() == [[True, False, False, False], [False, False, False, True]]
    kept = torch.isfinite(filter_logits(logits, top_k=3, top_p=1.0))
    assert kept.sum().item() == 6


def test_top_k_keeps_exactly_k_tokens_even_with_ties():
    logits = torch.tensor([[1.0, 1.0, 1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0], [3.0, 2.0, 2.0, 1.0, 0.0]])
    for k in (1, 2, 3):
        kept = torch.isfinite(filter_logits(logits, top_k=k))
        assert kept.sum(-1).tolist() == [k, k, k]
        assert not kept[0, 3]  # never the lower one while ties above remain
    kept = torch.isfinite(filter_logits(logits, top_k=2))[2]
    assert kept[0] and kept[1] != kept[2] and not kept[3:].any()  # the best, then one of the tied pair


def test_sampled_tokens_stay_inside_the_nucleus():
    model = ToySeq2Seq(sharpness=0.8)
    for seed in range(5):
        search = SearchConfig(strategy="sample", nbest=1, max_len_b=5, sampling_topp=0.6, seed=seed)
        out = sample(model, SRC, search)
        for i, toks in enumerate(out):
            logits = model(SRC[i : i + 1], torch.tensor([[BOS_ID] + toks]))[0]
            logits[:, PAD_ID] = logits[:, BOS_ID] = float("-inf")
            allowed = torch.isfinite(filter_logits(logits, top_p=0.6))
            ended = len(toks) < int(1.5 * (SRC[i] != 0).sum() + 5)
            for t, tok in enumerate(toks + ([EOS_ID] if ended else [])):
                assert allowed[t, tok], (i, t, tok)


def test_bad_arguments_are_rejected():
    model = ToySeq2Seq()
    with pytest.raises(ValueError, match="nbest"):
        beam_search(model, SRC, SearchConfig(beam_size=2, nbest=3))
    with pytest.raises(ValueError, match="sampling_topp"):
        SearchConfig(strategy="sample", nbest=1, sampling_topp=0.0)


class CharTokenizer:
    """Decodes ids as letters; enough of the Tokenizer interface for translate_dataset."""

    def decode(self, ids, side):
        assert side == "tgt"
        return " ".join("xuabcdefgh"[i] for i in ids)


def test_translate_ids_restores_order_and_matches_single_sentence_search():
    model = ToySeq2Seq()
    g = torch.Generator().manual_seed(0)
    src_ids = [
        torch.randint(4, 6, (int(n),), generator=g).tolist() for n in torch.randint(1, 12, (23,), generator=g)
    ]
    from translate.search import pad_sources, translate_dataset, translate_ids

    greedy = SearchConfig(beam_size=1, max_tokens=20, max_len_b=5)
    hyps = translate_ids(model, src_ids, greedy)
    assert [h[0].tokens for h in hyps] == [
        greedy_search(model, pad_sources([r]), SearchConfig(max_len_b=5))[0] for r in src_ids
    ]
    beam = SearchConfig(beam_size=3, nbest=2, max_tokens=30, max_len_b=5)
    beams = translate_ids(model, src_ids, beam)
    single = [beam_search(model, pad_sources([r]), beam) for r in src_ids]
    assert [[h.tokens for h in nb] for nb in beams] == [[h.tokens for h in s[0]] for s in single]
    texts = translate_dataset(model, CharTokenizer(), {"src_ids": src_ids}, greedy)
    assert texts == [CharTokenizer().decode(h[0].tokens, "tgt") for h in hyps]
    assert translate_ids(model, [], greedy) == []


def test_translate_ids_truncates_sources_beyond_max_positions(caplog):
    model = ToySeq2Seq()
    model.max_positions = 6  # 5 source ids + EOS fit
    from translate.search import pad_sources, translate_ids

    with caplog.at_level("WARNING"):
        hyps = translate_ids(model, [[4] * 9, [5, 4]], SearchConfig(beam_size=1, max_len_b=3))
    assert "1 source sentence(s) longer than 5 tokens were truncated" in caplog.text
    assert hyps[0][0].tokens == greedy_search(model, pad_sources([[4] * 5]), SearchConfig(max_len_b=3))[0]
    assert all(len(h[0].tokens) <= 5 for h in hyps)  # target positions are capped too


def test_translate_ids_names_the_sentence_whose_scores_are_not_finite():
    class Broken(ToySeq2Seq):
        def encode(self, src):
            return {**super().encode(src), "bad": (src == 1).any(1)}  # (B,) sources holding token 1

        def step(self, tokens, state):
            logits, new = super().step(tokens, state)
            return logits.masked_fill(state["bad"][:, None], float("nan")), {**new, "bad": state["bad"]}

    from translate.search import SearchConfig, SearchError, translate_ids

    with pytest.raises(SearchError, match="^source sentence 2: no hypothesis with a finite score"):
        translate_ids(Broken(), [[4, 5], [5], [1, 4], [4]], SearchConfig(beam_size=2, max_len_b=4))
