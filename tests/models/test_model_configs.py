"""Every shipped conf/model/*.yaml builds through Hydra's _target_, reads every key, and the paper configs
are the papers' size (counted on the meta device: nothing is allocated)."""

import ast
import inspect
import re
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from hydra.utils import get_class
from omegaconf import OmegaConf

from translate.models.build import build_model
from translate.models.interface import Seq2Seq

CONF = Path(__file__).resolve().parents[2] / "conf" / "model"
CONFIGS = sorted(p.stem for p in CONF.glob("*.yaml"))
FILLED_AT_BUILD = {"src_vocab_size", "tgt_vocab_size", "shared_vocab"}
SHRINK = {  # CPU-test sizes for each key that sets a width or depth
    "emb_dim": 8, "hidden_dim": 8, "readout_dim": 4, "attention_dim": 4, "d_model": 8, "ffn_dim": 16,
    "num_heads": 2, "encoder_layers": 1, "decoder_layers": 1,
}  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


def load(name: str):
    return OmegaConf.load(CONF / f"{name}.yaml")


def test_all_expected_configs_ship():
    expected = {
        "rnnencdec",
        "rnnencdec_paper",
        "rnnsearch",
        "rnnsearch_paper",
        "transformer",
        "transformer_base",
    }
    assert expected <= set(CONFIGS)


def read_in_body(function) -> set[str]:
    """The names a function's body reads (its docstring and signature do not count)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function))).body[0]
    return {n.id for stmt in tree.body for n in ast.walk(stmt) if isinstance(n, ast.Name)
            and isinstance(n.ctx, ast.Load)}  # fmt: skip


@pytest.mark.parametrize("name", CONFIGS)
def test_config_is_airtight(name):
    """The yaml names exactly the constructor's options (no dead key, no hidden default), and the constructor
    reads every option it takes (a parameter it ignores would be a dead key that looks alive)."""
    cfg = load(name)
    init = get_class(cfg._target_).__init__
    params = set(inspect.signature(init).parameters) - {"self"}
    assert set(cfg.keys()) - {"_target_"} == params - FILLED_AT_BUILD
    assert params - read_in_body(init) == set()


def constructor_defaults(cls) -> dict:
    params = inspect.signature(cls.__init__).parameters.items()
    return {k: p.default for k, p in params if p.default is not p.empty}


PAPER_MARK = re.compile(r"^(\w+):[^#]*#.*\bpaper: ([^\s;,)]+)")  # `key: value  # ...paper: <default>`


@pytest.mark.parametrize("name", CONFIGS)
def test_config_marks_every_change_to_the_papers_defaults(name):
    """The constructors' defaults are the papers'; a config that changes one says so on that line
    (`# paper: <default>`), and the paper configs change none."""
    cfg = load(name)
    defaults = constructor_defaults(get_class(cfg._target_))
    changed = {k: defaults[k] for k in cfg if k != "_target_" and cfg[k] != defaults[k]}
    lines = (CONF / f"{name}.yaml").read_text(encoding="utf-8").splitlines()
    marked = {m[1]: yaml.safe_load(m[2]) for m in map(PAPER_MARK.match, lines) if m}
    assert marked == changed
    if name.endswith("_paper") or name == "transformer_base":
        assert changed == {}


@pytest.mark.parametrize("name", CONFIGS)
def test_config_builds_and_runs_shrunk(name):
    cfg = load(name)
    for key, value in SHRINK.items():
        if key in cfg:
            cfg[key] = value
    model = build_model(cfg, 11, 13, shared_vocab=False)
    assert isinstance(model, Seq2Seq)
    src = torch.tensor([[5, 6, 7, 3], [8, 3, 0, 0]])
    tgt_in = torch.tensor([[2, 9, 10], [2, 4, 0]])
    assert model(src, tgt_in).shape == (2, 3, 13)


def test_build_accepts_plain_dicts_as_stored_in_checkpoints():
    plain = OmegaConf.to_container(load("transformer"))
    plain.update(d_model=8, ffn_dim=8, num_heads=2, encoder_layers=1, decoder_layers=1)
    model = build_model(plain, 9, 9, shared_vocab=True)
    assert model.src_embedding.weight is model.output.weight


def test_build_rejects_a_config_without_target():
    with pytest.raises(ValueError, match="_target_"):
        build_model({"d_model": 8}, 9, 9, shared_vocab=True)


def meta_count(name: str, vocab: int, shared: bool) -> int:
    with torch.device("meta"):
        return build_model(load(name), vocab, vocab, shared).num_parameters()


def test_transformer_base_is_the_papers_size():
    """Vaswani et al. report 65M for base on a 37k shared vocabulary; tied, without output bias: 63.1M."""
    v, e, f, n = 37000, 512, 2048, 6
    attention = 4 * (e * e + e)
    ffn = e * f + f + f * e + e
    encoder_layer = attention + ffn + 2 * 2 * e
    decoder_layer = 2 * attention + ffn + 3 * 2 * e
    expected = v * e + n * encoder_layer + n * decoder_layer  # one embedding table shared three ways
    assert meta_count("transformer_base", v, True) == expected == 63_082_496


def test_transformer_cpu_default_size():
    assert 7.4e6 < meta_count("transformer", 8000, True) < 7.8e6


def test_rnnsearch_paper_size():
    """Bahdanau et al.: embeddings 620, GRU 1000 per direction, maxout 500, attention 1000, 30k words."""
    v, emb, n, r, a = 30000, 620, 1000, 500, 1000
    gru = lambda inp: 3 * n * inp + 3 * n * n + 2 * 3 * n
    expected = (
        2 * v * emb  # source and target embeddings
        + 2 * gru(emb)  # bidirectional encoder
        + n * n + n  # s_0 = tanh(W_s h_1<-)
        + n * a + 2 * n * a + a + a  # W s, U h (+ bias), v
        + gru(emb + 2 * n)  # decoder GRU on [E y; c]
        + (n + emb + 2 * n) * 2 * r + 2 * r  # deep output before maxout
        + r * v + v  # output layer
    )  # fmt: skip
    assert meta_count("rnnsearch_paper", v, False) == expected
    assert 75e6 < expected < 85e6


def test_rnnencdec_paper_size():
    assert 65e6 < meta_count("rnnencdec_paper", 30000, False) < 75e6


@pytest.mark.parametrize("name", CONFIGS)
def test_each_model_composes_into_the_training_config(name):
    """`python -m translate.train model=<name>` composes, and its model node builds (shrunk)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF.parent), version_base=None):
        cfg = compose(config_name="train", overrides=[f"model={name}"])
    model_cfg = cfg.model
    for key, value in SHRINK.items():
        if key in model_cfg:
            model_cfg[key] = value
    assert isinstance(build_model(model_cfg, 11, 11, shared_vocab=True), get_class(model_cfg._target_))
