"""Every default has one home: the typed schemas (TrainConfig, DataConfig, EvalSettings, Bootstrap) and
CACHE_DIR; the yamls and the entry points start from them and restate none of their values
(tests/search/test_config.py does the same for SearchConfig)."""

import dataclasses
import importlib.util
import inspect
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from translate.data import pipeline
from translate.data.config import CACHE_DIR, DataConfig, compose_data_config
from translate.data.report import build_parser as data_report_parser
from translate.evaluation.config import EvalSettings
from translate.metrics import by_length
from translate.metrics.by_length import Bootstrap
from translate.training.config import TrainConfig, TrainerConfig

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
DATA = sorted(p.stem for p in (CONF / "data").glob("*.yaml"))


def composed(config: str, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config, overrides=list(overrides))


def leaves(node, prefix: str = "") -> dict:
    """A plain nested dict -> {"a.b": value} for every non-dict value."""
    out = {}
    for key, value in node.items():
        if isinstance(value, dict):
            out |= leaves(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_train_yaml_is_trainconfig_unchanged():
    """conf/train.yaml writes no trainer value, seed, device or cache dir: composed: TrainConfig's."""
    cfg = composed("train")
    assert OmegaConf.to_object(cfg.trainer) == TrainerConfig()
    top = TrainConfig()
    assert (cfg.seed, cfg.device, cfg.cache_dir) == (top.seed, top.device, top.cache_dir)
    written = OmegaConf.load(CONF / "train.yaml")
    assert set(written) == {"defaults", "hydra"}


@pytest.mark.parametrize("override", ["trainer.max_steps=many", "trainer.max_token=10", "cache=x"])
def test_the_train_config_is_typed(override):
    """A wrong type or a misspelt key fails when composing, before any work."""
    with pytest.raises(ConfigCompositionException):
        composed("train", override)


@pytest.mark.parametrize("name", DATA)
def test_each_data_yaml_writes_only_what_differs_from_dataconfig(name):
    """A value written in conf/data/<name>.yaml that equals DataConfig's default would be a second home."""
    written = leaves(OmegaConf.to_container(OmegaConf.load(CONF / "data" / f"{name}.yaml")))
    written.pop("defaults")
    schema = leaves(OmegaConf.to_container(OmegaConf.structured(DataConfig)))
    restated = {k: v for k, v in written.items() if k in schema and schema[k] == v}
    assert restated == {}
    assert set(written) <= set(schema)  # and every key it writes is one the schema declares
    cfg = compose_data_config(name)
    assert OmegaConf.get_type(cfg) is DataConfig and cfg.tokenizer.seed == DataConfig().tokenizer.seed


def test_a_data_config_is_typed():
    with pytest.raises(ConfigCompositionException):
        compose_data_config("bible_es_en", ["data.tokenizer.vocab_sise=10"])
    with pytest.raises(ConfigCompositionException):
        compose_data_config("bible_es_en", ["data.filters.max_len=long"])


def test_evaluate_yaml_is_evalsettings_unchanged():
    cfg = composed("evaluate")
    assert OmegaConf.to_object(cfg) == EvalSettings()
    assert set(OmegaConf.load(CONF / "evaluate.yaml")) == {"defaults", "hydra"}
    changed = OmegaConf.to_object(composed("evaluate", "bootstrap.resamples=1000", "alignments=[4]"))
    assert changed == dataclasses.replace(EvalSettings(), bootstrap=Bootstrap(resamples=1000), alignments=[4])
    with pytest.raises(ConfigCompositionException):
        composed("evaluate", "bootstrap.n_boot=5")


def test_the_bootstrap_defaults_are_bootstraps():
    assert EvalSettings().bootstrap == Bootstrap()
    for fn in (by_length.bootstrap_interval, by_length.bleu_by_length):
        assert inspect.signature(fn).parameters["bootstrap"].default == Bootstrap()
    with pytest.raises(ValueError, match="^bootstrap.confidence"):
        Bootstrap(confidence=95)


def script(name: str):
    spec = importlib.util.spec_from_file_location(f"script_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_entry_point_uses_the_one_cache_dir():
    assert TrainConfig().cache_dir == EvalSettings().cache_dir == CACHE_DIR
    assert composed("train").cache_dir == composed("evaluate").cache_dir == CACHE_DIR
    assert inspect.signature(pipeline.prepare_data).parameters["cache_dir"].default == CACHE_DIR
    assert data_report_parser().parse_args([]).cache_dir == Path(CACHE_DIR)
    assert script("bench_decode").build_parser().parse_args([]).cache_dir == CACHE_DIR
    shipped = [*ROOT.glob("translate/**/*.py"), *ROOT.glob("scripts/*.py"), *CONF.rglob("*.yaml")]
    spelled = [p.relative_to(ROOT).as_posix() for p in shipped if ".cache/translate" in p.read_text("utf-8")]
    assert spelled == ["translate/data/config.py"]


def test_ct2_stopping_has_one_default():
    from translate import cli
    from translate.engines import CT2_STOPPING, load_engine

    assert cli.build_parser().parse_args([]).ct2_stopping == CT2_STOPPING[0]
    assert inspect.signature(load_engine).parameters["ct2_stopping"].default == CT2_STOPPING[0]
    ct2 = pytest.importorskip("translate.engines.ct2", exc_type=ImportError)
    assert ct2.STOPPING == CT2_STOPPING
    assert inspect.signature(ct2.CT2Engine).parameters["stopping"].default == CT2_STOPPING[0]
