"""Checkpoints are self-describing: load_model() rebuilds the same model from the file alone; bad files fail
with one line naming the path."""

import io

import pytest
import sentencepiece as spm
import torch
from omegaconf import OmegaConf

from translate.data.tokenizer import Tokenizer
from translate.data.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from translate.models.build import build_model
from translate.models.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint

SENTENCES = [
    "en el principio creó dios los cielos y la tierra",
    "in the beginning god created the heaven and the earth",
    "y la tierra estaba desordenada y vacía",
    "and the earth was without form and void",
] * 5


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(SENTENCES), model_writer=out, vocab_size=60, hard_vocab_limit=False,
        pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID, minloglevel=2,
    )  # fmt: skip
    return Tokenizer(out.getvalue())


MODEL_CONFIGS = {
    "transformer": {
        "_target_": "translate.models.transformer.Transformer", "d_model": 16, "ffn_dim": 16, "num_heads": 2,
        "encoder_layers": 1, "decoder_layers": 1, "dropout": 0.0, "tie_embeddings": True,
    },
    "rnnsearch": {
        "_target_": "translate.models.rnn_search.RNNsearch", "emb_dim": 8, "hidden_dim": 8, "readout_dim": 4,
        "attention_dim": 8, "tie_embeddings": True,
    },
}  # fmt: skip


@pytest.mark.parametrize("name", MODEL_CONFIGS)
def test_round_trip_rebuilds_the_same_model(tmp_path, tokenizer, name):
    cfg = MODEL_CONFIGS[name]
    model = build_model(cfg, tokenizer.src_vocab_size, tokenizer.tgt_vocab_size, tokenizer.shared).eval()
    path = tmp_path / "run" / "best.pt"
    payload = {
        "model": model.state_dict(),
        "model_config": OmegaConf.to_container(OmegaConf.create(cfg)),
        "tokenizer": tokenizer.state_dict(),
        "step": 12,
        "metrics": {"bleu": 1.5},
    }
    save_checkpoint(path, payload)
    assert [p.name for p in path.parent.iterdir()] == ["best.pt"]  # no temp file left behind
    loaded, tok, ckpt = load_model(path)
    assert not loaded.training and ckpt["step"] == 12 and type(loaded) is type(model)
    assert tok.src_vocab_size == tokenizer.src_vocab_size and tok.encode("la tierra", "src")
    src = torch.tensor([tokenizer.encode("la tierra y los cielos", "src") + [EOS_ID]])
    tgt_in = torch.tensor([[BOS_ID] + tokenizer.encode("the earth", "tgt")])
    with torch.no_grad():
        torch.testing.assert_close(loaded(src, tgt_in), model(src, tgt_in), atol=0, rtol=0)


def test_overwrite_is_atomic_and_replaces(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"step": 1})
    save_checkpoint(path, {"step": 2, "weights": torch.ones(3)})
    assert load_checkpoint(path)["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_missing_file_is_a_one_line_error_naming_the_path(tmp_path):
    path = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match="nope.pt: no such checkpoint") as err:
        load_checkpoint(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None])
def test_corrupt_file_is_a_one_line_error_naming_the_path(tmp_path, content):
    path = tmp_path / "broken.pt"
    if content is None:  # a real checkpoint cut in half (a crash without atomic writes)
        save_checkpoint(path, {"model": {"w": torch.randn(64, 64)}})
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="broken.pt: ") as err:
        load_checkpoint(path)
    assert "\n" not in str(err.value)


def test_unsafe_pickles_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"obj": OmegaConf.create({"a": 1})}, path)  # arbitrary classes need weights_only=False
    with pytest.raises(CheckpointError, match="evil.pt"):
        load_checkpoint(path)


def test_incomplete_checkpoint_names_what_is_missing(tmp_path):
    path = tmp_path / "partial.pt"
    save_checkpoint(path, {"model": {}, "step": 3})
    with pytest.raises(CheckpointError, match="partial.pt: checkpoint lacks model_config, tokenizer"):
        load_model(path)


def test_weights_that_do_not_fit_the_config(tmp_path, tokenizer):
    cfg = MODEL_CONFIGS["transformer"]
    model = build_model(cfg, tokenizer.src_vocab_size, tokenizer.tgt_vocab_size, tokenizer.shared)
    path = tmp_path / "mismatch.pt"
    bigger = {**cfg, "d_model": 32}
    save_checkpoint(
        path, {"model": model.state_dict(), "model_config": bigger, "tokenizer": tokenizer.state_dict()}
    )
    with pytest.raises(CheckpointError, match="mismatch.pt: weights do not fit") as err:
        load_model(path)
    assert "\n" not in str(err.value)


def test_model_config_that_cannot_be_built(tmp_path, tokenizer):
    path = tmp_path / "unknown.pt"
    cfg = {"_target_": "translate.models.nowhere.Model"}
    save_checkpoint(path, {"model": {}, "model_config": cfg, "tokenizer": tokenizer.state_dict()})
    with pytest.raises(CheckpointError, match="unknown.pt: cannot rebuild the model") as err:
        load_model(path)
    assert "\n" not in str(err.value)
