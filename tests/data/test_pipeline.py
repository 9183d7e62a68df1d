"""prepare_data end to end on the tiny fixture: columns, stats, tokenizer reuse and the encoding cache."""

import pytest
import sentencepiece as spm
from omegaconf import OmegaConf

from translate.data.config import compose_data_config
from translate.data.pipeline import PreparedData, prepare_data
from translate.data.tokenizer import Tokenizer
from translate.data.vocab import BOS_ID, EOS_ID, PAD_ID


def tiny_cfg(**overrides):
    """The shipped default data config, pointed at the committed fixture and shrunk for the CPU."""
    cfg = compose_data_config("bible_es_en")
    cfg.path = "tests/fixtures/bible_tiny"
    cfg.tokenizer.vocab_size = 120
    for k, v in overrides.items():
        OmegaConf.update(cfg, k, v)
    return cfg


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def prepared(cache) -> PreparedData:
    return prepare_data(tiny_cfg(), cache)


def test_columns_ids_and_stats(prepared):
    assert set(prepared.datasets) == {"train", "dev", "test"}
    for ds in prepared.datasets.values():
        assert ds.column_names == ["src", "tgt", "src_ids", "tgt_ids"]
    tok = prepared.tokenizer
    row = prepared.datasets["dev"][0]
    specials = {PAD_ID, BOS_ID, EOS_ID}
    assert row["src_ids"] == tok.encode(row["src"], "src") and not specials & set(row["src_ids"])
    assert row["tgt_ids"] == tok.encode(row["tgt"], "tgt") and not specials & set(row["tgt_ids"])
    assert tok.decode(row["tgt_ids"], "tgt") == row["tgt"]
    s = prepared.stats
    assert s["name"] == "bible_es_en" and (s["src_lang"], s["tgt_lang"]) == ("es", "en")
    for split, n in (("train", 400), ("dev", 50), ("test", 50)):
        st = s["splits"][split]
        assert st["pairs_raw"] == n
        assert st["pairs"] == n - sum(st["removed"].values()) == len(prepared.datasets[split])
        assert set(st["removed"]) == {"empty", "max_len", "ratio"}
    assert s["tokenizer"]["shared"] and s["tokenizer"]["src_vocab_size"] == tok.src_vocab_size <= 120
    assert s["seconds"]["total"] >= s["seconds"]["encode"] > 0


def test_rerun_reuses_tokenizer_and_encoded_splits(prepared, cache, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(spm.SentencePieceTrainer, "train", fail)
    monkeypatch.setattr(Tokenizer, "encode_batch", fail)
    again = prepare_data(tiny_cfg(), cache)
    assert again.stats["tokenizer"]["source"] == "cache"
    assert all(again.stats["splits"][s]["encode_cached"] for s in ("train", "dev", "test"))
    assert again.tokenizer.fingerprint == prepared.tokenizer.fingerprint
    assert again.datasets["train"]["tgt_ids"][:] == prepared.datasets["train"]["tgt_ids"][:]
    assert str(cache) in again.datasets["train"].cache_files[0]["filename"]


def test_given_tokenizer_skips_training_and_loads_only_requested_splits(prepared, tmp_path, monkeypatch):
    monkeypatch.setattr(spm.SentencePieceTrainer, "train", lambda *a, **k: pytest.fail("trained"))
    tok = Tokenizer.from_state_dict(prepared.tokenizer.state_dict())
    out = prepare_data(tiny_cfg(), tmp_path, splits=("test",), tokenizer=tok)
    assert set(out.datasets) == {"test"} and out.tokenizer is tok
    assert out.stats["tokenizer"]["source"] == "given" and set(out.stats["splits"]) == {"test"}
    assert out.datasets["test"]["src_ids"][:] == prepared.datasets["test"]["src_ids"][:]


def test_settings_change_the_cache_key(prepared, cache):
    bpe = prepare_data(tiny_cfg(**{"tokenizer.model_type": "bpe", "tokenizer.joint": False}), cache,
                       splits=("dev",))
    assert bpe.stats["tokenizer"]["source"] == "trained" and not bpe.tokenizer.shared
    assert bpe.tokenizer.fingerprint != prepared.tokenizer.fingerprint
    assert not bpe.stats["splits"]["dev"]["encode_cached"]


def test_local_config_from_two_text_files(tmp_path, fixtures_dir):
    from translate.data.corpus import read_tsv

    src, tgt = read_tsv(fixtures_dir / "bible_tiny" / "train.tsv.gz", header=True, columns=("es", "en"))
    (tmp_path / "c.es").write_text("\n".join(src) + "\n", encoding="utf-8")
    (tmp_path / "c.en").write_text("\n".join(tgt) + "\n", encoding="utf-8")
    cfg = compose_data_config("local")
    cfg.train = [str(tmp_path / "c.es"), str(tmp_path / "c.en")]
    cfg.tokenizer.vocab_size = 100
    out = prepare_data(cfg, tmp_path / "cache")
    counts = {s: st["pairs_raw"] for s, st in out.stats["splits"].items()}
    assert counts == {"train": 360, "dev": 20, "test": 20}
