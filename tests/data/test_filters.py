"""Filters: each one's count, training-only length limits, and a clear error when nothing is left."""

import datasets
import pytest
from omegaconf import OmegaConf

from translate.data.errors import DataError
from translate.data.filters import drop_reason, filter_split
from translate.data.pipeline import prepare_data


def test_drop_reason_order_and_limits():
    assert drop_reason("a b", "c d e", 10, 3.0) == ""
    assert drop_reason("", "c", 10, 3.0) == "empty"
    assert drop_reason("   ", "c", 10, 3.0) == "empty"
    assert drop_reason(" ".join("w" * 11), "", 10, 3.0) == "empty"  # the first failing filter counts
    assert drop_reason(" ".join("w" * 11), " ".join("v" * 11), 10, 3.0) == "max_len"
    assert drop_reason("a", "b c d e", 10, 3.0) == "ratio"
    assert drop_reason("a", "b c d", 10, 3.0) == ""  # ratio 3.0 is allowed
    assert drop_reason("a", "b c d e", None, None) == ""


def rows():
    src = ["uno dos", "", "tres", "a b c d e f", "x", "hola"]
    tgt = ["one two", "empty source", "", "a b c d e f", "1 2 3 4", "hi"]
    return datasets.Dataset.from_dict({"src": src, "tgt": tgt})


def test_filter_split_counts_each_filter_on_train():
    cfg = OmegaConf.create({"max_len": 5, "max_ratio": 3.0})
    kept, stats = filter_split(rows(), cfg, "train", key="k1")
    assert stats == {"pairs_raw": 6, "removed": {"empty": 2, "max_len": 1, "ratio": 1}, "pairs": 2}
    assert kept["src"][:] == ["uno dos", "hola"] and kept.column_names == ["src", "tgt"]


def test_dev_and_test_only_lose_empty_pairs():
    cfg = OmegaConf.create({"max_len": 5, "max_ratio": 3.0})
    kept, stats = filter_split(rows(), cfg, "test", key="k2")
    assert stats["removed"] == {"empty": 2, "max_len": 0, "ratio": 0} and len(kept) == 4


def test_bad_filter_option_is_a_data_error():
    with pytest.raises(DataError, match="max_ratio"):
        filter_split(rows(), OmegaConf.create({"max_len": 5, "max_ratio": 0.5}), "train", key="k3")


def test_corpus_empty_after_filtering_is_a_clear_error(tmp_path):
    cfg = OmegaConf.create({
        "name": "bible_es_en", "source": "tsv", "path": "tests/fixtures/bible_tiny", "src_lang": "es",
        "tgt_lang": "en", "filters": {"max_len": 1, "max_ratio": 3.0},
        "tokenizer": {"model_type": "unigram", "vocab_size": 100, "joint": True, "character_coverage": 1.0,
                      "input_sentence_size": 1000, "seed": 0},
    })
    with pytest.raises(DataError, match=r"data=bible_es_en: the train split is empty after filtering") as e:
        prepare_data(cfg, tmp_path)
    assert "\n" not in str(e.value) and "400 pairs read" in str(e.value)
