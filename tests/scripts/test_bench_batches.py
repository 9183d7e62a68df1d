"""scripts/bench_batches.py on the tiny fixture: its padding shares and shapes are those of make_batches."""

import bench_batches  # scripts/ on sys.path (tests/scripts/conftest.py)
import pytest

from translate.data.batching import make_batches
from translate.data.config import compose_data_config
from translate.data.pipeline import prepare_data
from translate.data.vocab import PAD_ID

ROOT = bench_batches.Path(bench_batches.__file__).resolve().parents[1]


def test_padding_shapes_and_counts_are_the_training_batches(tmp_path, capsys):
    overrides = [f"data.path={ROOT / 'tests/fixtures/bible_tiny'}"]
    train = prepare_data(compose_data_config("bible_es_en", overrides), tmp_path, splits=("train",))
    train = train.datasets["train"]
    stats = bench_batches.batch_stats(train, 200, epochs=2, seed=5)
    batches = [b for e in range(2) for b in make_batches(train, 200, shuffle=True, seed=5, epoch=e)]
    assert stats["batches_per_epoch"] == len(batches) / 2
    tgt_real = sum(b.n_tgt_tokens for b in batches)
    assert stats["tgt_padding"] == pytest.approx(1 - tgt_real / sum(b.tgt_out.numel() for b in batches))
    src_real = sum(int(b.src.ne(PAD_ID).sum()) for b in batches)
    assert stats["src_padding"] == pytest.approx(1 - src_real / sum(b.src.numel() for b in batches))
    assert 0 < stats["tgt_padding"] < 1 and stats["collate_ms_median"] > 0
    shapes = {(b.src.size(0), b.src.size(1), b.tgt_out.size(1)) for b in batches}
    assert stats["distinct_shapes"] == len(shapes) > 1
    assert all(b.src.numel() <= 200 and b.tgt_out.numel() <= 200 for b in batches if b.src.size(0) > 1)

    assert bench_batches.main([*overrides, "--max-tokens", "200,400", "--cache-dir", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert "| 200 |" in table and "| 400 |" in table and "target padding" in table
