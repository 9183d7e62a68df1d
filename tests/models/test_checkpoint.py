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
    assert not any(p.requires_grad for p in loaded.parameters())  # for inference (packed copies need it)
    model.eval().requires_grad_(False)  # the same inference paths as the loaded model
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


def test_a_save_that_fails_midway_keeps_the_old_checkpoint(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"step": 1})
    with pytest.raises(Exception, match="pickle"):  # torch.save fails partway: an entry it cannot pickle
        save_checkpoint(path, {"step": 2, "weights": torch.ones(10_000), "z": lambda: None})
    assert load_checkpoint(path)["step"] == 1
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


# ---- every malformed checkpoint is one CheckpointError naming the path (issue: tracebacks got through)


@pytest.fixture(scope="module")
def good(tmp_path_factory, tiny_checkpoint):
    """A tiny real checkpoint (file bytes and payload) written the way training writes one."""
    tmp = tmp_path_factory.mktemp("good")
    path = tiny_checkpoint(tmp / "best.pt", "transformer", tmp / "cache")
    return path.read_bytes(), torch.load(path, weights_only=True)


def assert_one_line_error(path, capsys=None):
    with pytest.raises(CheckpointError) as err:
        load_model(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    if capsys is not None:  # the same one line from the CLI, exit status 2
        from translate.cli import main

        capsys.readouterr()
        assert main(["-c", str(path), "hola"]) == 2
        assert capsys.readouterr().err.splitlines() == [f"translate: error: {message}"]


@pytest.mark.parametrize("cut", [1, 3, 10, 64, 512, 0.25, 0.5, 0.9, -100, -22, -1])
def test_truncated_files(tmp_path, good, cut, capsys):
    data = good[0]
    n = int(len(data) * cut) if isinstance(cut, float) else cut if cut > 0 else len(data) + cut
    path = tmp_path / "cut.pt"
    path.write_bytes(data[:n])
    assert_one_line_error(path, capsys)


@pytest.mark.parametrize("seed", range(6))
def test_random_bytes(tmp_path, seed, capsys):
    g = torch.Generator().manual_seed(seed)
    size = int(torch.randint(1, 4000, (1,), generator=g))
    noise = bytes(torch.randint(0, 256, (size,), generator=g).tolist())
    prefix = [b"", b"\x80\x02", b"PK\x03\x04", b"\x80\x02.", b"\x80\x04\x95", b"\x80\x02}q\x00"][seed]
    path = tmp_path / "noise.pt"
    path.write_bytes(prefix if seed == 3 else prefix + noise)  # seed 3: the 3-byte b"\x80\x02." of the issue
    assert_one_line_error(path, capsys)


WRONG = [7, 1.5, "text", b"bytes", [1, 2], None, True, {"a": 1}]


TOP_LEVEL = ["model", "model_config", "tokenizer", "config", "step", "epoch", "best_bleu", "optimizer",
             "scheduler", "scaler", "rng", "train_state", "metrics"]  # fmt: skip


@pytest.mark.parametrize("key", TOP_LEVEL)
def test_wrong_type_in_each_top_level_entry(tmp_path, good, key, capsys):
    from translate.models.checkpoint import FIELD_TYPES

    for i, value in enumerate(WRONG):
        if isinstance(value, FIELD_TYPES[key]) and not isinstance(value, bool):
            continue  # the right type: not a malformed entry
        path = tmp_path / f"{key}-{i}.pt"
        save_checkpoint(path, {**good[1], key: value})
        assert_one_line_error(path, capsys if i < 2 else None)


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c["tokenizer"].update(src_model=b"not a sentencepiece model"),
        lambda c: c["tokenizer"].update(src_model=12),
        lambda c: c["tokenizer"].update(shared="yes"),
        lambda c: c["tokenizer"].update(shared=False),  # no tgt_model
        lambda c: c["tokenizer"].update(version=99),
        lambda c: c["tokenizer"].pop("src_model"),
        lambda c: c["model"].update({"extra.weight": torch.zeros(2)}),
        lambda c: c["model"].update({"encoder_norm.weight": [1.0, 2.0]}),
        lambda c: c["model"].update({7: torch.zeros(2)}),
        lambda c: c["model"].clear(),
        lambda c: c["model_config"].update(d_model="big"),
        lambda c: c["model_config"].update(num_heads=0),
        lambda c: c["model_config"].update(d_model=-16),
        lambda c: c["model_config"].update(no_such_option=1),
        lambda c: c["model_config"].update(_target_=42),
        lambda c: c["model_config"].pop("_target_"),
    ],
)
def test_malformed_entries_inside(tmp_path, good, edit, capsys):
    import copy

    payload = copy.deepcopy(good[1])
    edit(payload)
    path = tmp_path / "inside.pt"
    save_checkpoint(path, payload)
    assert_one_line_error(path, capsys)
