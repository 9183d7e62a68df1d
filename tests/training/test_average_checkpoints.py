import importlib.util
from pathlib import Path

import pytest
import torch

from translate.models.checkpoint import CheckpointManager

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts/average_checkpoints.py"


@pytest.fixture(scope="module")
def avg():
    spec = importlib.util.spec_from_file_location("average_checkpoints", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_run(directory: Path, steps: list[int], keep_last: int = 10) -> list[dict]:
    manager = CheckpointManager(directory / "checkpoints", keep_last=keep_last)
    states = []
    for step in steps:
        state = {"w": torch.full((2, 3), float(step)), "b": torch.randn(3), "n": torch.tensor(step)}
        states.append(state)
        manager.save({"model": state, "model_config": {"_target_": "x.Y"}, "tokenizer": {}, "step": step,
                      "optimizer": {"state": {}}}, is_best=False)  # fmt: skip
    return states


def test_averages_the_last_n_step_checkpoints(avg, tmp_path, capsys):
    states = write_run(tmp_path, [10, 20, 30, 40])
    assert avg.main([str(tmp_path), "--last", "3"]) == 0
    out = torch.load(tmp_path / "checkpoints/avg3.pt", weights_only=True)
    assert torch.allclose(out["model"]["w"], torch.full((2, 3), 30.0))  # mean of 20, 30, 40
    torch.testing.assert_close(out["model"]["b"], sum(s["b"] for s in states[1:]) / 3)
    assert out["model"]["n"].item() == 40  # integer buffers: the newest
    assert out["step"] == 40 and out["model_config"] == {"_target_": "x.Y"} and "optimizer" not in out
    assert len(out["metrics"]["averaged_from"]) == 3
    assert "avg3.pt" in capsys.readouterr().out


def test_too_few_checkpoints_is_a_one_line_error(avg, tmp_path, capsys):
    write_run(tmp_path, [1])
    assert avg.main([str(tmp_path / "checkpoints"), "--last", "2", "--output", str(tmp_path / "a.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "1 step checkpoint(s) found" in err and err.count("\n") == 1
    assert not (tmp_path / "a.pt").exists()


def test_by_default_it_averages_every_step_file_a_default_run_keeps(avg, tmp_path, capsys, compose_train):
    keep_last = compose_train([]).trainer.keep_last
    write_run(tmp_path, list(range(1, keep_last + 4)), keep_last=keep_last)  # the trainer's default
    assert avg.main([str(tmp_path)]) == 0, capsys.readouterr().err
    out = torch.load(tmp_path / f"checkpoints/avg{keep_last}.pt", weights_only=True)
    assert len(out["metrics"]["averaged_from"]) == keep_last
