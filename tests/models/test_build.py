"""A checkpoint's model_config is untrusted: build_model builds only the project's model classes and never
follows a nested `_target_`, so loading a checkpoint cannot call arbitrary code (weights_only=True alone
did not ensure that: Hydra's instantiate followed nested targets)."""

import builtins
import os
import subprocess
import sys

import pytest
import torch

from translate.models.build import build_model
from translate.models.checkpoint import CheckpointError, load_model, save_checkpoint

TRANSFORMER = {"_target_": "translate.models.transformer.Transformer", "d_model": 16, "ffn_dim": 32,
               "num_heads": 2, "encoder_layers": 1, "decoder_layers": 1, "dropout": 0.0,
               "tie_embeddings": True}  # fmt: skip

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def payload(tmp_path_factory, tiny_checkpoint):
    tmp = tmp_path_factory.mktemp("build")
    return torch.load(tiny_checkpoint(tmp / "best.pt", "transformer", tmp / "cache"), weights_only=True)


@pytest.fixture
def calls(monkeypatch, tmp_path):
    """Every call of builtins.print, os.system, subprocess.run and an import of a planted module, recorded."""
    seen = []
    real_print = builtins.print
    monkeypatch.setattr(builtins, "print", lambda *a, **k: (seen.append(("print", a)), real_print(*a, **k)))
    monkeypatch.setattr(os, "system", lambda *a, **k: seen.append(("os.system", a)))
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: seen.append(("subprocess.run", a)))
    (tmp_path / "planted_probe.py").write_text(
        f"open({str(tmp_path / 'imported')!r}, 'w').close()\ndef run(*a, **k):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield seen
    imported = sys.modules.pop("planted_probe", None)
    assert imported is None and not (tmp_path / "imported").exists(), "a module the config names was imported"


HOSTILE = {
    "issue reproduction": {"_target_": "builtins.dict",
                           "x": {"_target_": "builtins.print", "_args_": ["pwned"]}},
    "os.system": {"_target_": "os.system", "command": "echo pwned"},
    "subprocess.run": {"_target_": "subprocess.run", "args": ["echo", "pwned"]},
    "print with args": {"_target_": "builtins.print", "_args_": ["pwned"]},
    "through a project module": {"_target_": "translate.models.checkpoint.os.system", "command": "echo x"},
    "an attribute of a project module": {"_target_": "translate.models.checkpoint.save_checkpoint",
                                         "path": "/tmp/pwned.pt", "payload": {}},
    "a planted module": {"_target_": "planted_probe.run"},
    "a planted module below the package name": {"_target_": "translate.models.planted_probe.run"},
    "nested under a real model": {**TRANSFORMER, "dropout": {"_target_": "os.system", "command": "echo x"}},
    "nested in a list": {**TRANSFORMER, "extra": [1, {"_target_": "subprocess.run", "args": ["echo"]}]},
    "nested print": {**TRANSFORMER, "x": {"_target_": "builtins.print", "_args_": ["pwned"]}},
    "nested planted": {**TRANSFORMER, "x": {"_target_": "planted_probe.run"}},
    "hydra partial": {**TRANSFORMER, "_partial_": True},
    "hydra positional args": {**TRANSFORMER, "_args_": ["pwned"]},
}  # fmt: skip


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_model_config_calls_nothing(name, payload, calls, tmp_path, capsys):
    path = tmp_path / "hostile.pt"
    save_checkpoint(path, {**payload, "model_config": HOSTILE[name]})
    with pytest.raises(CheckpointError, match=f"^{path}: cannot rebuild the model from model_config"):
        load_model(path)
    with pytest.raises(ValueError):
        build_model(HOSTILE[name], 10, 10, True)
    from translate.cli import main

    assert main(["-c", str(path), "hola"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert [c for c in calls if c[0] != "print" or "pwned" in c[1]] == []


def test_the_projects_models_still_build(calls):
    model = build_model(TRANSFORMER, 10, 10, True)
    assert type(model).__name__ == "Transformer" and model.src_vocab_size == 10
    assert calls == []
