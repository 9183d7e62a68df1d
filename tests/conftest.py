"""Shared test set-up: the Triton interpreter on machines without CUDA, fixed seeds, fixture paths."""

import os
import sys
from pathlib import Path

# Triton reads TRITON_INTERPRET when it is first imported: set it before any test module imports triton.
if "TRITON_INTERPRET" not in os.environ:
    try:
        import torch

        if not torch.cuda.is_available():
            os.environ["TRITON_INTERPRET"] = "1"
    except ImportError:
        os.environ["TRITON_INTERPRET"] = "1"

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402

from translate.evaluation import config as evaluation_config  # noqa: E402
from translate.search import config as search_config  # noqa: E402
from translate.training import config as training_config  # noqa: E402

for schemas in (search_config, training_config, evaluation_config):  # as the Hydra apps and scripts do
    schemas.register_with_hydra()
pytest_plugins = ["tests.service.live"]  # the live `translate serve` fixtures (served_ckpt, live)


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(autouse=True)
def _seed():
    import torch

    torch.manual_seed(0)
    yield


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from threads, and lose much when other processes share the cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TINY_MODELS = {
    "transformer": dict(d_model=16, ffn_dim=32, num_heads=2, encoder_layers=1, decoder_layers=2),
    "rnnsearch": dict(emb_dim=16, hidden_dim=16, readout_dim=16, attention_dim=16),
    "rnnencdec": dict(emb_dim=16, hidden_dim=16, readout_dim=16),
}


def tiny_data_config():
    """conf/data/bible_es_en.yaml pointed at the fixture corpus, with a vocabulary it can fill."""
    from translate.data.config import compose_data_config

    cfg = compose_data_config("bible_es_en")
    cfg.path = str(FIXTURES / "bible_tiny")
    cfg.tokenizer.vocab_size = 120
    return cfg


@pytest.fixture(scope="module")
def copy_checkpoint(tmp_path_factory):
    """The committed copy-task Transformer (tests/fixtures/make_copy_model.py), data path made absolute."""
    from translate.models.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(FIXTURES / "copy_transformer.pt")
    ckpt["config"]["data"]["path"] = str(FIXTURES / "bible_tiny")
    path = tmp_path_factory.mktemp("copy") / "copy.pt"
    save_checkpoint(path, ckpt)
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint():
    """Factory: write a tiny untrained checkpoint of conf/model/<name>.yaml the way training writes one.

    tiny_checkpoint(path, name, cache_dir, step=7) -> path; the tokenizer is trained on the fixture corpus.
    """
    import torch
    from omegaconf import OmegaConf

    from translate.data.pipeline import prepare_data
    from translate.models.build import build_model
    from translate.models.checkpoint import save_checkpoint

    def make(path: Path, name: str, cache_dir: Path, step: int = 7) -> Path:
        data = tiny_data_config()
        tok = prepare_data(data, cache_dir, splits=("train",)).tokenizer
        mc = OmegaConf.load(ROOT / f"conf/model/{name}.yaml")
        mc.update(TINY_MODELS[name])
        torch.manual_seed(0)
        model = build_model(mc, tok.src_vocab_size, tok.tgt_vocab_size, tok.shared)
        cfg = {"data": OmegaConf.to_container(data), "model": OmegaConf.to_container(mc)}
        payload = {"model": model.state_dict(), "model_config": OmegaConf.to_container(mc),
                   "tokenizer": tok.state_dict(), "config": cfg, "step": step}  # fmt: skip
        save_checkpoint(path, payload)
        return path

    return make
