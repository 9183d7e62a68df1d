"""Corpus readers: TSV and aligned text files, carving, the hub format, and one-line errors on bad input."""

import gzip
from pathlib import Path

import datasets
import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf

from translate.data.config import compose_data_config
from translate.data.corpus import (
    PROJECT_ROOT,
    carve,
    content_key,
    load_splits,
    read_lines,
    read_parallel_text,
    read_tsv,
    resolve_path,
)
from translate.data.errors import DataError

CONF = PROJECT_ROOT / "conf"


def data_cfg(name: str, **overrides):
    cfg = compose_data_config(name)
    for k, v in overrides.items():
        OmegaConf.update(cfg, k, v)
    return cfg


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_embedded_format_reads_named_columns_from_gzip(fixtures_dir):
    src, tgt = read_tsv(fixtures_dir / "bible_tiny" / "train.tsv.gz", header=True, columns=("es", "en"))
    with gzip.open(fixtures_dir / "bible_tiny" / "train.tsv.gz", "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert lines[0] == "ref\tes\ten" and len(src) == len(tgt) == len(lines) - 1 == 400
    assert (src[0], tgt[0]) == tuple(lines[1].split("\t")[1:])
    swapped, _ = read_tsv(fixtures_dir / "bible_tiny" / "train.tsv.gz", header=True, columns=("en", "es"))
    assert swapped == tgt


def test_tsv_header_option_and_ragged_lines(tmp_path):
    p = write(tmp_path / "c.tsv", "src\ttgt\nhola mundo\thello world\nadiós\tbye\n")
    assert read_tsv(p, header=True) == (["hola mundo", "adiós"], ["hello world", "bye"])
    assert read_tsv(p, header=False)[0][0] == "src"
    bad = write(tmp_path / "bad.tsv", "a\tb\nno tab here\n")
    with pytest.raises(DataError, match=r"bad.tsv:2: expected 2 tab-separated fields, got 1"):
        read_tsv(bad, header=False)
    with pytest.raises(DataError, match="header has no column 'fr'"):
        read_tsv(p, header=True, columns=("src", "fr"))


def test_line_count_mismatch_names_both_files_and_counts(tmp_path):
    s = write(tmp_path / "train.es", "uno\ndos\ntres\n")
    t = write(tmp_path / "train.en", "one\ntwo\n")
    with pytest.raises(DataError) as e:
        read_parallel_text(s, t)
    msg = str(e.value)
    assert "\n" not in msg
    assert f"{s} has 3 lines" in msg and f"{t} has 2 lines" in msg


def test_non_utf8_file_names_file_and_line(tmp_path):
    p = tmp_path / "latin1.txt"
    p.write_bytes("bien\naño\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.txt:2: not valid UTF-8 \(byte 0xf1 at column 2\)"):
        read_lines(p)
    gz = tmp_path / "x.tsv.gz"
    gz.write_bytes(gzip.compress(b"ref\tes\ten\nGen.1.1\tEN el principio\tIn the start\nGen.1.2\t\xff\tx"))
    with pytest.raises(DataError, match=r"x.tsv.gz:3: not valid UTF-8"):
        read_tsv(gz, header=True, columns=("es", "en"))
    with pytest.raises(DataError, match="no such file"):
        read_lines(tmp_path / "missing.txt")


def test_crlf_and_bom_are_stripped(tmp_path):
    p = tmp_path / "w.txt"
    p.write_bytes("\ufeffuno\r\ndos\r\n".encode())
    assert read_lines(p) == ["uno", "dos"]


def test_relative_paths_resolve_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_path("tests/fixtures/bible_tiny") == PROJECT_ROOT / "tests/fixtures/bible_tiny"
    (tmp_path / "mine.tsv").write_text("a\tb\n")
    assert resolve_path("mine.tsv") == tmp_path / "mine.tsv"  # the working directory wins if it has the file
    splits = load_splits(data_cfg("bible_es_en", path="tests/fixtures/bible_tiny"), ("dev",), tmp_path)
    assert set(splits) == {"dev"} and splits["dev"].column_names == ["src", "tgt"]
    assert len(splits["dev"]) == 50


def test_relative_paths_mean_the_working_directory_even_after_a_hydra_app_ran(tmp_path, monkeypatch):
    """A Hydra app run earlier in the process leaves its original cwd behind (HydraConfig stays set); the data
    library must not read it: a relative path means the process's working directory, in an app or not."""
    from hydra.core.hydra_config import HydraConfig

    from translate.data.pipeline import prepare_data

    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    for root, text in ((here, "aquí"), (elsewhere, "allí")):
        (root / "corpus").mkdir(parents=True)
        for split in ("train", "dev", "test"):
            rows = "".join(f"x.1.{i}\t{text} {i}\t{i}\n" for i in range(30))
            write(root / "corpus" / f"{split}.tsv", f"ref\tes\ten\n{rows}")
    stale = OmegaConf.create({"hydra": {"runtime": {"cwd": str(elsewhere)}}})
    monkeypatch.setattr(HydraConfig.instance(), "cfg", stale)
    monkeypatch.chdir(here)
    cfg = data_cfg("bible_es_en", path="corpus", **{"tokenizer.vocab_size": 40})
    assert load_splits(cfg, ("dev",), "cache")["dev"]["src"][0] == "aquí 0"
    prepared = prepare_data(cfg, "cache", splits=("dev",))
    assert prepared.datasets["dev"]["src"][0] == "aquí 0"
    assert list((here / "cache" / "spm").glob("*.model")) and not (elsewhere / "cache").exists()


def test_local_text_files_with_carved_dev_test(tmp_path):
    n = 100
    s = write(tmp_path / "all.de", "".join(f"satz {i}\n" for i in range(n)))
    t = write(tmp_path / "all.en", "".join(f"sentence {i}\n" for i in range(n)))
    cfg = data_cfg("local", train=[str(s), str(t)])
    a = load_splits(cfg, ("train", "dev", "test"), tmp_path)
    b = load_splits(cfg, ("train", "dev", "test"), tmp_path)
    assert {k: len(v) for k, v in a.items()} == {"train": 90, "dev": 5, "test": 5}
    rows = [r for k in ("train", "dev", "test") for r in a[k]["src"]]
    assert sorted(rows) == sorted(f"satz {i}" for i in range(n))  # disjoint and covering
    assert all(a[k]["src"][:] == b[k]["src"][:] for k in a)  # deterministic
    assert all(r.split()[1] == t.split()[1] for r, t in zip(a["dev"]["src"], a["dev"]["tgt"]))  # aligned


def test_local_tsv_with_given_dev_and_header(tmp_path):
    tr = write(tmp_path / "train.tsv", "de\ten\n" + "".join(f"a{i}\tb{i}\n" for i in range(40)))
    dv = write(tmp_path / "dev.tsv", "de\ten\nx\ty\n")
    cfg = data_cfg("local", train=str(tr), dev=str(dv), header=True, **{"carve.test": 0.1})
    out = load_splits(cfg, ("train", "dev", "test"), tmp_path)
    assert (len(out["train"]), len(out["dev"]), len(out["test"])) == (36, 1, 4)
    assert out["dev"][0] == {"src": "x", "tgt": "y"}


def test_local_without_train_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="data.train"):
        load_splits(data_cfg("local"), ("train",), tmp_path)
    with pytest.raises(DataError, match="cannot hold out"):
        carve(3, 0.5, 0.5, 0)


def test_wmt14_hub_format_from_a_local_fixture(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    cfg = data_cfg("wmt14_en_fr", path="tests/fixtures/wmt14")
    out = load_splits(cfg, ("train", "dev", "test"), tmp_path)
    assert {k: len(v) for k, v in out.items()} == {"train": 12, "dev": 2, "test": 3}
    assert out["dev"][0] == {"src": "The house is small.", "tgt": "La maison est petite."}  # en -> fr
    assert content_key(out["test"]) == content_key(load_splits(cfg, ("test",), tmp_path)["test"])


def test_unknown_data_config_lists_the_choices(tmp_path):
    (tmp_path / "primary.yaml").write_text(
        f"defaults:\n  - data: bible_es_en\n  - _self_\nhydra:\n  searchpath:\n    - file://{CONF}\n"
    )
    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
        with pytest.raises(MissingConfigException) as e:
            compose("primary", overrides=["data=bible_en_es"])
        assert all(name in str(e.value) for name in ("bible_es_en", "local", "wmt14_en_fr"))
        for name in ("bible_es_en", "local", "wmt14_en_fr"):  # every shipped data config composes
            cfg = compose("primary", overrides=[f"data={name}"])
            assert cfg.data.name == name and cfg.data.source in ("tsv", "local", "hub")
            assert set(cfg.data.tokenizer) == {"model_type", "vocab_size", "joint", "character_coverage",
                                               "input_sentence_size", "seed"}
