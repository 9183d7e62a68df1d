"""Fixtures for the training tests: compose the real Hydra configs (conf/train.yaml) and shrink them."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"

# Tiny sizes per model family: every model config runs a couple of steps on the CPU with these.
SHRINK = {
    "transformer": ["model.d_model=16", "model.ffn_dim=32", "model.num_heads=2", "model.encoder_layers=1",
                    "model.decoder_layers=1"],
    "rnn": ["model.emb_dim=16", "model.hidden_dim=16", "model.readout_dim=16"],
}  # fmt: skip


def _shrink(model_name: str) -> list[str]:
    if model_name.startswith("transformer"):
        return SHRINK["transformer"]
    extra = ["model.attention_dim=16"] if model_name.startswith("rnnsearch") else []
    return SHRINK["rnn"] + extra


def _compose(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=overrides)


@pytest.fixture
def shrink_model():
    """model config name -> overrides making it tiny."""
    return _shrink


@pytest.fixture
def compose_train():
    """overrides -> conf/train.yaml composed as `python -m translate.train <overrides>` would."""
    return _compose


@pytest.fixture(autouse=True)
def _one_torch_thread(one_thread):
    """Every training test runs on one thread (the shared fixture in tests/conftest.py)."""
    yield


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One tokenizer/encoding cache for all training tests (SentencePiece trains once)."""
    return tmp_path_factory.mktemp("translate_cache")


@pytest.fixture
def smoke_cfg(cache_dir):
    """Factory: the smoke experiment, made smaller still, plus extra overrides."""

    def make(*overrides: str):
        base = [
            "experiment=smoke",
            "device=cpu",
            f"cache_dir={cache_dir}",
            "trainer.val_subset=8",
            "trainer.val_search.max_len_b=3",
            "trainer.val_search.max_len_a=0.5",
        ]
        return _compose(base + list(overrides))

    return make
