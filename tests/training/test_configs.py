"""Every shipped config composes, and (shrunk to tiny sizes) trains a couple of steps on the CPU."""

import gzip
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from translate.training.loop import train

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
DATA = sorted(p.stem for p in (CONF / "data").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
TINY = ROOT / "tests/fixtures/bible_tiny"
RUN_FEW = ["device=cpu", "trainer.max_steps=2", "trainer.max_time=0", "trainer.val_every_time=0",
           "trainer.max_tokens=300", "trainer.log_every=1", "data.filters.max_len=12"]  # fmt: skip


def test_the_groups_hold_the_expected_choices():
    assert {"transformer", "rnnsearch", "rnnencdec"} <= set(MODELS)
    assert {"bible_es_en", "local", "wmt14_en_fr"} <= set(DATA)
    assert {"smoke", "bahdanau_fig2", "wmt14_en_fr"} <= set(EXPERIMENTS)


def test_default_config_is_the_30_minute_cpu_run(compose_train):
    cfg = compose_train([])
    assert cfg.data.name == "bible_es_en" and cfg.model._target_.endswith("Transformer")
    assert (cfg.model.d_model, cfg.model.ffn_dim, cfg.model.encoder_layers, cfg.model.decoder_layers) == (
        256, 1024, 3, 3)  # fmt: skip
    assert cfg.data.tokenizer.vocab_size == 8000 and cfg.data.tokenizer.joint
    assert cfg.trainer.precision == "auto" and cfg.model.attention_backend == "auto"  # chosen per machine
    from translate.training.budget import parse_duration

    assert (
        0 < parse_duration(cfg.trainer.max_time) <= 27 * 60
    )  # leaves room for set-up and the last validation


@pytest.mark.parametrize("model", MODELS)
def test_every_model_config_trains_a_few_steps_bf16(model, cache_dir, tmp_path, compose_train, shrink_model):
    cfg = compose_train(
        [f"model={model}", f"data.path={TINY}", "data.tokenizer.vocab_size=200", f"cache_dir={cache_dir}"]
        + shrink_model(model)
        + RUN_FEW
        + ["trainer.precision=bf16"]  # bf16 autocast on the CPU, also where it is slow (tiny models)
    )
    result = train(cfg, tmp_path)
    assert result.steps == 2 and all(torch.isfinite(torch.tensor(loss)) for _, loss in result.losses)
    ckpt = torch.load(tmp_path / "checkpoints/last.pt", weights_only=True)
    assert ckpt["model_config"]["_target_"] == cfg.model._target_


@pytest.mark.parametrize("data", DATA)
def test_every_data_config_trains_a_few_steps(data, cache_dir, tmp_path, compose_train, shrink_model):
    overrides = [f"data={data}", "data.tokenizer.vocab_size=200", f"cache_dir={cache_dir}"]
    if data == "local":  # a TSV of (src, tgt) lines made from the fixture; dev/test are carved out of it
        rows = gzip.open(TINY / "train.tsv.gz", "rt", encoding="utf-8").read().splitlines()[1:]
        tsv = tmp_path / "corpus.tsv"
        tsv.write_text("".join("\t".join(r.split("\t")[1:]) + "\n" for r in rows), encoding="utf-8")
        overrides.append(f"data.train={tsv}")
    elif data == "wmt14_en_fr":
        overrides.append(f"data.path={ROOT / 'tests/fixtures/wmt14'}")
    else:
        overrides.append(f"data.path={TINY}")
    cfg = compose_train(overrides + shrink_model("transformer") + RUN_FEW + ["trainer.precision=fp32"])
    result = train(cfg, tmp_path / "run")
    assert result.steps == 2


def test_smoke_experiment_is_tiny_and_on_the_fixture(compose_train):
    cfg = compose_train(["experiment=smoke"])
    assert Path(cfg.data.path) == Path("tests/fixtures/bible_tiny")
    assert cfg.model.d_model <= 64 and cfg.model.dropout > 0  # dropout on: the resume test needs it
    assert 0 < cfg.trainer.max_steps <= 50


def test_bahdanau_fig2_sweeps_models_and_max_lengths_into_known_dirs(
    cache_dir, tmp_path, compose_train, shrink_model
):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=bahdanau_fig2"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert set(params["model"].split(",")) == {"rnnencdec", "rnnsearch", "transformer"}
    assert set(params["data.filters.max_len"].split(",")) == {"30", "50"}
    raw = OmegaConf.to_container(cfg.hydra, resolve=False)
    assert raw["run"]["dir"] == "runs/bahdanau_fig2/${hydra:runtime.choices.model}-${data.filters.max_len}"
    assert raw["sweep"]["dir"] + "/" + raw["sweep"]["subdir"] == raw["run"]["dir"]
    # one of its runs, shrunk: RNNsearch-30
    run = compose_train(
        ["experiment=bahdanau_fig2", "model=rnnsearch", f"data.path={TINY}", "data.tokenizer.vocab_size=200",
         f"cache_dir={cache_dir}"] + shrink_model("rnnsearch") + RUN_FEW
    )  # fmt: skip
    assert run.data.filters.max_len == 12
    assert train(run, tmp_path).steps == 2


def test_wmt14_experiment_is_paper_sized_and_trains_when_shrunk(
    cache_dir, tmp_path, compose_train, shrink_model
):
    cfg = compose_train(["experiment=wmt14_en_fr"])
    assert cfg.data.name == "wmt14_en_fr" and cfg.model.hidden_dim == 1000 and cfg.model.emb_dim == 620
    assert cfg.optimizer._target_ == "torch.optim.Adadelta" and cfg.device == "cuda"
    run = compose_train(
        ["experiment=wmt14_en_fr", f"data.path={ROOT / 'tests/fixtures/wmt14'}",
         "data.tokenizer.vocab_size=200", f"cache_dir={cache_dir}", "trainer.max_epochs=0",
         "trainer.val_every_steps=0"]
        + shrink_model("rnnsearch_paper") + RUN_FEW
    )  # fmt: skip
    assert train(run, tmp_path).steps == 2
