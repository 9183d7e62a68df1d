"""SearchConfig is the one home of the decoding defaults: every entry point that decodes starts from it."""

import dataclasses
import importlib.util
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from translate import cli, serve
from translate.search import SearchConfig
from translate.search.flags import search_from_args
from translate.training.config import TrainerConfig

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
DEFAULTS = SearchConfig()


def script(name: str):
    """scripts/<name>.py as a module (its main() is not run)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def composed(config: str, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config, overrides=list(overrides))


def test_the_cli_flags_are_searchconfig_with_its_defaults():
    assert search_from_args(cli.build_parser().parse_args([])) == DEFAULTS
    args = cli.build_parser().parse_args(["--beam", "3", "--alpha", "1.0", "--batch-tokens", "99"])
    assert search_from_args(args) == dataclasses.replace(DEFAULTS, beam_size=3, alpha=1.0, batch_tokens=99)


def test_the_server_defaults_are_searchconfigs():
    args = serve.build_parser().parse_args([])
    assert search_from_args(args, serve.SEARCH_FIELDS) == DEFAULTS
    assert serve.parse(["--beam", "2"])[2] == dataclasses.replace(DEFAULTS, beam_size=2)


def test_evaluate_yaml_composes_searchconfig_unchanged():
    cfg = composed("evaluate")
    assert OmegaConf.to_object(cfg.search) == DEFAULTS  # a typed node: it converts back to the dataclass
    assert SearchConfig(**cfg.search) == DEFAULTS  # what translate/evaluate.py builds
    beam = composed("evaluate", "search.beam_size=10", "search.alpha=1.0").search
    assert OmegaConf.to_object(beam) == dataclasses.replace(DEFAULTS, beam_size=10, alpha=1.0)


@pytest.mark.parametrize("override", ["search.beam_size=ten", "search.beam=3"])
def test_the_search_node_is_typed(override):
    """A wrong type or an unknown field fails when composing, not after the checkpoints are loaded."""
    with pytest.raises(ConfigCompositionException):
        composed("evaluate", override)


def test_validation_decodes_with_trainerconfigs_val_search():
    """trainer.val_search is SearchConfig, typed; the composed train.yaml gives TrainerConfig's (greedy, by
    design, and larger batches), and an experiment may change its batch size."""
    val = OmegaConf.to_object(composed("train").trainer.val_search)
    assert val == TrainerConfig().val_search == dataclasses.replace(DEFAULTS, beam_size=1, batch_tokens=6000)
    assert val.greedy
    smoke = OmegaConf.to_object(composed("train", "experiment=smoke").trainer.val_search)
    assert smoke == dataclasses.replace(val, batch_tokens=800)
    with pytest.raises(ConfigCompositionException):
        composed("train", "trainer.val_search.beam=3")


def test_the_benchmarks_decode_with_the_defaults():
    decode = script("bench_decode").build_parser().parse_args([])
    assert decode.batch_tokens == DEFAULTS.batch_tokens and DEFAULTS.beam_size in decode.beams
    served = script("bench_serve").build_parser().parse_args(["--checkpoint", "x.pt"])
    assert served.beam == DEFAULTS.beam_size and DEFAULTS.beam_size in served.cache_beams


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"alpha": float("nan")}, "alpha must be a finite number"),
        ({"alpha": float("inf")}, "alpha must be a finite number"),
        ({"alpha": 1e308}, "alpha must be between 0 and 5"),
        ({"alpha": -0.1}, "alpha must be between 0 and 5"),
        ({"alpha": True}, "alpha must be a number"),
        ({"alpha": "0.6"}, "alpha must be a number"),
        ({"beam_size": 0}, "beam_size must be between 1 and 256"),
        ({"beam_size": 257}, "beam_size must be between 1 and 256"),
        ({"beam_size": 2.0}, "beam_size must be an integer"),
        ({"beam_size": 3, "nbest": 4}, r"nbest must be between 1 and beam_size \(3\)"),
        ({"max_len_a": float("nan")}, "max_len_a must be a finite number"),
        ({"max_len_a": 11.0}, "max_len_a must be between 0 and 10"),
        ({"max_len_b": 10**6}, "max_len_b must be between 0 and 10000"),
        ({"max_len_a": 0.0, "max_len_b": 0}, "must not both be 0"),
        ({"batch_tokens": 0}, "batch_tokens must be between 1 and 1000000"),
        ({"batch_tokens": 10**400}, "batch_tokens must be between 1 and 1000000"),
        ({"stopping": "sometimes"}, "stopping must be one of exact|k_ended, got 'sometimes'"),
        ({"stopping": None}, "stopping must be one of exact|k_ended"),
    ],
)
def test_every_field_is_bounded_and_finite(changes, message):
    with pytest.raises(ValueError, match=message):
        SearchConfig(**changes)


def test_the_bounds_reach_every_entry_point(capsys):
    """The CLI, the server's flags and Hydra all build SearchConfig, so each refuses what it refuses."""
    for argv, message in [(["--alpha", "nan"], "--alpha must be a finite number, got nan"),
                          (["--alpha=-inf"], "--alpha must be a finite number, got -inf"),
                          (["--beam", "1000"], "--beam must be between 1 and 256, got 1000"),
                          (["--stopping", "early"], "--stopping must be one of exact|k_ended")]:  # fmt: skip
        with pytest.raises(SystemExit):
            cli.main([*argv, "Hola."])
        assert message in capsys.readouterr().err
        with pytest.raises(SystemExit):
            serve.parse(argv)
        assert message in capsys.readouterr().err
    with pytest.raises(ValueError, match="alpha must be between"):
        SearchConfig(**composed("evaluate", "search.alpha=1e308").search)
    with pytest.raises(ValueError, match="alpha must be a finite number"):
        SearchConfig(**composed("evaluate", "search.alpha=nan").search)
