"""SentencePiece tokenizer: fixed special ids, round trips, checkpoint-safe state, training cache."""

import io
import random

import pytest
import sentencepiece as spm
import torch
from omegaconf import OmegaConf

from translate.data.errors import DataError
from translate.data.tokenizer import Tokenizer, train_tokenizer
from translate.data.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID

WORDS_ES = "en el principio creó dios los cielos y la tierra luz agua noche día".split()
WORDS_EN = "in the beginning god created heavens and earth light water night day".split()


def corpus(n=300, seed=0):
    rng = random.Random(seed)
    src = [" ".join(rng.choices(WORDS_ES, k=rng.randint(3, 12))) for _ in range(n)]
    tgt = [" ".join(rng.choices(WORDS_EN, k=rng.randint(3, 12))) for _ in range(n)]
    return src, tgt


def tok_cfg(**kw):
    base = dict(model_type="unigram", vocab_size=80, joint=True, character_coverage=1.0,
                input_sentence_size=100_000, seed=0)
    base.update(kw)
    return OmegaConf.create(base)


@pytest.mark.parametrize("joint", [True, False])
@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_special_ids_and_round_trip(tmp_path, joint, model_type):
    src, tgt = corpus()
    tok, info = train_tokenizer(src, tgt, tok_cfg(joint=joint, model_type=model_type), tmp_path)
    assert not info["cached"]
    assert tok.shared is joint
    for side in ("src", "tgt"):
        pieces = [tok.id_to_piece(i, side) for i in (PAD_ID, UNK_ID, BOS_ID, EOS_ID)]
        assert pieces == ["<pad>", "<unk>", "<s>", "</s>"]
    ids = tok.encode(src[0], "src")
    assert ids and all(i > EOS_ID for i in ids)  # no BOS/EOS added, no unknowns on training text
    assert tok.decode(ids, "src") == src[0]
    assert tok.decode(tok.encode(tgt[1], "tgt"), "tgt") == tgt[1]
    assert "".join(tok.encode_pieces(src[0], "src")).replace("\u2581", " ").strip() == src[0]
    if not joint:  # per-language models: Spanish words are not in the English vocabulary
        assert tok.encode("creó", "src") != tok.encode("creó", "tgt")


def test_decode_stops_at_eos_and_drops_pad_bos(tmp_path):
    src, tgt = corpus()
    tok, _ = train_tokenizer(src, tgt, tok_cfg(), tmp_path)
    ids = tok.encode("the beginning", "tgt")
    assert tok.decode([BOS_ID, *ids, EOS_ID, *tok.encode("water", "tgt"), PAD_ID], "tgt") == "the beginning"
    assert tok.decode([BOS_ID, *ids, PAD_ID, PAD_ID], "tgt") == "the beginning"
    with pytest.raises(ValueError, match="side"):
        tok.encode("x", "source")


@pytest.mark.parametrize("joint", [True, False])
def test_state_dict_survives_torch_load_weights_only(tmp_path, joint):
    src, tgt = corpus()
    tok, _ = train_tokenizer(src, tgt, tok_cfg(joint=joint), tmp_path)
    state = tok.state_dict()
    assert all(isinstance(v, (str, int, bool, bytes)) for v in state.values())
    buf = io.BytesIO()
    torch.save({"tokenizer": state}, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)["tokenizer"]
    tok2 = Tokenizer.from_state_dict(loaded)
    assert tok2.shared is joint
    assert tok2.fingerprint == tok.fingerprint
    assert (tok2.src_vocab_size, tok2.tgt_vocab_size) == (tok.src_vocab_size, tok.tgt_vocab_size)
    assert tok2.encode(tgt[3], "tgt") == tok.encode(tgt[3], "tgt")


def test_second_call_reuses_cache_without_training(tmp_path, monkeypatch):
    src, tgt = corpus()
    tok, info = train_tokenizer(src, tgt, tok_cfg(), tmp_path)
    assert not info["cached"] and list((tmp_path / "spm").glob("*.model"))

    def no_training(*args, **kwargs):
        raise AssertionError("SentencePiece retrained although the model is cached")

    monkeypatch.setattr(spm.SentencePieceTrainer, "train", no_training)
    tok2, info2 = train_tokenizer(src, tgt, tok_cfg(), tmp_path)
    assert info2["cached"] and info2["key"] == info["key"]
    assert tok2.fingerprint == tok.fingerprint
    # another corpus or other settings miss the cache, so training is attempted
    with pytest.raises(AssertionError, match="retrained"):
        train_tokenizer(src[:-1], tgt[:-1], tok_cfg(), tmp_path)
    with pytest.raises(AssertionError, match="retrained"):
        train_tokenizer(src, tgt, tok_cfg(vocab_size=70), tmp_path)


def test_bad_settings_and_bad_state_are_data_errors(tmp_path):
    src, tgt = corpus()
    with pytest.raises(DataError, match="model_type"):
        train_tokenizer(src, tgt, tok_cfg(model_type="wordpiece"), tmp_path)
    with pytest.raises(DataError, match="not a SentencePiece model"):
        Tokenizer(b"definitely not a model proto")
    with pytest.raises(DataError, match="version"):
        Tokenizer.from_state_dict({"version": 99, "shared": True, "src_model": b"x"})


def test_a_shared_vocabulary_numbers_two_models_and_is_checked(tmp_path):
    """Tokenizer(src, tgt, vocab): Marian's layout (translate import marian); ids come from the vocabulary."""
    src, tgt = corpus()
    tok, _ = train_tokenizer(src, tgt, tok_cfg(joint=False), tmp_path)
    state = tok.state_dict()
    pieces = ["<pad>", "<unk>", "<s>", "</s>"]
    for side, size in (("src", tok.src_vocab_size), ("tgt", tok.tgt_vocab_size)):
        pieces += [p for p in (tok.id_to_piece(i, side) for i in range(4, size)) if p not in pieces]
    shared = Tokenizer(state["src_model"], state["tgt_model"], pieces)
    assert shared.shared_vocab and not shared.shared and shared.src_vocab_size == len(pieces)
    ids = shared.encode(tgt[0], "tgt")
    assert [shared.id_to_piece(i, "tgt") for i in ids] == tok.encode_pieces(tgt[0], "tgt")
    assert shared.decode(ids, "tgt") == tgt[0]
    assert shared.encode("creó ☃", "src")[-1] == UNK_ID  # a piece the vocabulary lacks
    buf = io.BytesIO()
    torch.save({"tokenizer": shared.state_dict()}, buf)
    buf.seek(0)
    again = Tokenizer.from_state_dict(torch.load(buf, weights_only=True)["tokenizer"])
    assert again.fingerprint == shared.fingerprint != tok.fingerprint and again.encode(tgt[0], "tgt") == ids
    with pytest.raises(DataError, match="ids 0-3"):
        Tokenizer(state["src_model"], state["tgt_model"], pieces[1:])
    with pytest.raises(DataError, match="more than once"):
        Tokenizer(state["src_model"], state["tgt_model"], pieces + [pieces[5]])
    with pytest.raises(DataError, match="'vocab' should be a list of str"):
        Tokenizer.from_state_dict({**shared.state_dict(), "vocab": "abc"})
