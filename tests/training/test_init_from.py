"""trainer.init_from: fine-tuning an imported OPUS-MT-style model on the fixture corpus.

The run starts from the checkpoint's weights, model config and tokenizer (its vocabulary is kept), its dev
loss falls below the starting model's, and it resumes exactly like any run.
"""

import contextlib

import pytest
import torch
from omegaconf import OmegaConf

from tests.models.marian_tiny import build_tiny_marian
from translate.data.pipeline import prepare_data
from translate.importer import main as import_main
from translate.models.checkpoint import CheckpointError, load_model
from translate.training.loop import train
from translate.training.validate import dev_subset, validate

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("init_from")
    directory = build_tiny_marian(tmp / "opus-mt-tiny", layers=1)
    ckpt = tmp / "imported.pt"
    assert import_main(["marian", str(directory), "-o", str(ckpt)]) == 0
    return ckpt


def dev_loss(model, tokenizer, cfg) -> float:
    data = prepare_data(cfg.data, cache_dir=cfg.cache_dir, splits=("dev",), tokenizer=tokenizer)
    dev = dev_subset(data.datasets["dev"], cfg.trainer.val_subset)
    search = OmegaConf.to_object(cfg.trainer.val_search)
    return validate(model, tokenizer, dev, search, autocast=contextlib.nullcontext)["loss"]


def test_fine_tuning_starts_from_the_import_keeps_its_vocabulary_and_lowers_the_dev_loss(
    smoke_cfg, imported, tmp_path
):
    common = [f"trainer.init_from={imported}", "trainer.val_every_steps=6", "trainer.max_tokens=2000"]
    cfg = smoke_cfg("trainer.max_steps=6", *common)
    start_model, start_tok, start = load_model(imported)
    before = dev_loss(start_model, start_tok, cfg)
    result = train(cfg, tmp_path / "run")
    assert result.steps == 6
    ckpt = torch.load(tmp_path / "run/checkpoints/last.pt", weights_only=True)
    assert ckpt["model_config"] == start["model_config"]  # the smoke model config was set aside
    assert ckpt["tokenizer"] == start["tokenizer"]  # the vocabulary and both SentencePiece models kept
    assert ckpt["metrics"]["dev_loss"] < before
    changed = [k for k in start["model"] if not torch.equal(start["model"][k], ckpt["model"][k])]
    assert changed  # trained from the imported weights, not from a fresh model:
    fresh = train(smoke_cfg("trainer.max_steps=1", "trainer.init_from=null", "trainer.val_every_steps=0",
                            "trainer.max_tokens=2000"), tmp_path / "fresh")  # fmt: skip
    assert fresh.losses[0][1] != result.losses[0][1]

    # ... and resumes like any run: 3 steps, then 3 more, log the losses of the 6 above
    first = train(smoke_cfg("trainer.max_steps=3", *common), tmp_path / "split")
    second = train(smoke_cfg("trainer.max_steps=6", "trainer.resume=true", *common), tmp_path / "split")
    assert first.losses + second.losses == result.losses


def test_init_from_a_missing_file_names_it(smoke_cfg, tmp_path):
    with pytest.raises(CheckpointError, match="nowhere.pt: no checkpoint to start from"):
        train(smoke_cfg("trainer.max_steps=1", f"trainer.init_from={tmp_path / 'nowhere.pt'}"), tmp_path)
