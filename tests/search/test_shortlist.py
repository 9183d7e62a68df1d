"""Vocabulary shortlists: learnt from co-occurrence, saved and checked, and decoding restricted to them."""

import pytest
import torch

from tests.conftest import TINY_MODELS
from translate.data.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from translate.engines import EngineError, load_engine
from translate.models.quantize import quantize_dynamic_int8
from translate.models.transformer import Transformer
from translate.search import SearchConfig, decode
from translate.search.shortlist import Shortlist, ShortlistError, learn_shortlist, load_shortlist
from translate.search.stepper import Stepper

pytestmark = pytest.mark.usefixtures("one_thread")
V = 40


def toy_pairs():
    """Source 10 always comes with target 20, source 11 with 21; target 30 is in every translation."""
    pairs = []
    for i in range(60):
        src, tgt = [12 + i % 5], [30, 25 + i % 4]
        if i % 2:
            src, tgt = src + [10], tgt + [20]
        if i % 3 == 0:
            src, tgt = src + [11], tgt + [21]
        pairs.append((src, tgt))
    return pairs


def test_learnt_candidates_hold_the_aligned_pieces_and_the_frequent_ones():
    sl = learn_shortlist(toy_pairs(), V, V, frequent=1, per_source=2)
    assert sl.frequent.tolist() == [30]  # in every translation
    assert sl.candidates[10, 0].item() == 20 and sl.candidates[11, 0].item() == 21  # Dice 1.0
    assert 30 not in sl.candidates[10].tolist()  # frequent pieces are not spent on candidates
    assert (sl.candidates[5] == -1).all()  # a piece never seen has none
    vocab = sl.vocab(torch.tensor([[10, 3, PAD_ID]]), extra=[7])
    assert vocab.tolist() == sorted(set(vocab.tolist()))
    assert {20, 30, EOS_ID, UNK_ID, 7} <= set(vocab.tolist())
    assert 21 not in vocab.tolist() and PAD_ID not in vocab.tolist() and BOS_ID not in vocab.tolist()


def test_save_load_and_refusals(tmp_path):
    sl = learn_shortlist(toy_pairs(), V, V, frequent=2, per_source=3, tokenizer="abc")
    back = load_shortlist(sl.save(tmp_path / "sl.pt"))
    assert torch.equal(back.candidates, sl.candidates) and torch.equal(back.frequent, sl.frequent)

    class Tok:
        fingerprint, src_vocab_size, tgt_vocab_size = "other", V, V

    with pytest.raises(ShortlistError, match="sl.pt: learnt with tokenizer abc"):
        load_shortlist(tmp_path / "sl.pt", Tok())
    (tmp_path / "bad.pt").write_bytes(b"not a file")
    with pytest.raises(ShortlistError, match="bad.pt: cannot read"):
        load_shortlist(tmp_path / "bad.pt")
    torch.save({"x": 1}, tmp_path / "other.pt")
    with pytest.raises(ShortlistError, match="other.pt: not a shortlist file"):
        load_shortlist(tmp_path / "other.pt")


def tiny_transformer() -> Transformer:
    torch.manual_seed(0)
    return Transformer(V, V, shared_vocab=True, dropout=0.0, **TINY_MODELS["transformer"]).eval()


def whole(shortlist_ids) -> Shortlist:
    """A shortlist whose every batch gets exactly `shortlist_ids` (plus EOS and UNK)."""
    return Shortlist(torch.full((V, 1), -1, dtype=torch.long), torch.tensor(shortlist_ids), V)


SEARCHES = [SearchConfig(beam_size=3, max_len_b=8), SearchConfig(beam_size=1, max_len_b=8),
            SearchConfig(strategy="sample", seed=3, max_len_b=8)]  # beam, greedy, sampling


@pytest.mark.parametrize("quantized", [False, True])
@pytest.mark.parametrize("search", SEARCHES)
def test_decoding_stays_inside_the_shortlist_and_equals_the_full_one_when_it_holds_all(search, quantized):
    model = tiny_transformer()
    if quantized:
        model = quantize_dynamic_int8(model)
    src = torch.tensor([[5, 6, 7, EOS_ID], [8, 9, EOS_ID, PAD_ID]])
    full = decode(model, src, search)
    everything = decode(model, src, search, shortlist=whole(list(range(4, V))))
    if not quantized:  # int8: the shortlist's rows project in float (dequantized weights), not bit for bit
        assert [[h.tokens for h in s] for s in everything] == [[h.tokens for h in s] for s in full]
    if search.strategy == "beam" and search.beam_size > 1:  # the same scores too (the same distribution)
        assert [h.score for s in everything for h in s] == pytest.approx([h.score for s in full for h in s],
                                                                         abs=0.05 if quantized else 1e-5)
    allowed = [11, 12, 13, 14]
    cut = decode(model, src, search, shortlist=whole(allowed))
    for s in cut:
        for h in s:
            assert set(h.tokens) <= set(allowed) | {UNK_ID}, h.tokens


def test_restricted_logits_are_the_full_ones_at_the_shortlist():
    model = tiny_transformer()
    src = torch.tensor([[5, 6, 7, EOS_ID]])
    vocab = torch.tensor([EOS_ID, 9, 17, 30])
    with torch.no_grad():
        full = Stepper(model, src).step(torch.tensor([BOS_ID]))
        cut = Stepper(model, src, vocab=vocab).step(torch.tensor([BOS_ID]))
    torch.testing.assert_close(cut[:, vocab], full[:, vocab])
    rest = torch.ones(V, dtype=torch.bool)
    rest[vocab] = False
    assert torch.isinf(cut[:, rest]).all()


def test_a_model_that_cannot_restrict_is_refused(tiny_checkpoint, tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "rnn.pt", "rnnsearch", tmp_path / "cache")
    engine = load_engine("torch", ckpt)
    sl = Shortlist(torch.full((engine.tokenizer.src_vocab_size, 1), -1, dtype=torch.long), torch.tensor([5]),
                   engine.tokenizer.tgt_vocab_size, engine.tokenizer.fingerprint)  # fmt: skip
    sl.save(tmp_path / "sl.pt")
    with pytest.raises(EngineError, match="RNNsearch cannot restrict its output projection"):
        load_engine("torch", ckpt, shortlist=tmp_path / "sl.pt")
    with pytest.raises(EngineError, match="--shortlist applies to --engine torch"):
        load_engine("ct2", tmp_path, shortlist=tmp_path / "sl.pt")
