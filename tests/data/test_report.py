"""`make data` report: figures per split on the tiny fixture, markdown output, README section swap."""

import pytest

from translate.data.report import SECTION, main, percentiles, replace_section, tensor_padding

TINY = ["data.path=tests/fixtures/bible_tiny", "data.tokenizer.vocab_size=120"]


def test_percentiles_and_tensor_padding():
    import numpy as np

    assert percentiles(np.arange(1, 101)) == [50, 90, 99, 100]
    src, tgt = np.array([1, 3]), np.array([2, 2])  # + EOS: src 2, 4 -> (2, 4); tgt 3, 3 -> (2, 3)
    assert tensor_padding(src, tgt, [[0, 1]]) == pytest.approx(1 - (6 + 6) / (8 + 6))
    assert tensor_padding(src, tgt, [[0], [1]]) == 0.0


def test_report_prints_and_writes_markdown(tmp_path, capsys):
    out = tmp_path / "stats.md"
    args = ["--cache-dir", str(tmp_path / "cache"), "--output", str(out), "--max-tokens", "512", *TINY]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "data=bible_es_en (es -> en)" in printed and "build time:" in printed
    md = out.read_text()
    table = [line.split(" | ") for line in md.splitlines() if line.startswith("| ")]
    rows = {cells[0].strip("| "): cells for cells in table}
    assert set(rows) >= {"train", "dev", "test"}
    assert rows["train"][1] == "400" and rows["dev"][1] == "50" and rows["test"][1] == "50"
    p50, p90, p99, top = map(int, rows["train"][3].split("/"))  # es words
    assert 0 < p50 <= p90 <= p99 <= top
    bucketed, unbucketed = (float(x.strip(" |%")) for x in rows["train"][-1].split(" / "))
    assert 0 <= bucketed < unbucketed


def test_write_readme_replaces_only_its_section(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Data\n\nIntro.\n\n{SECTION}\n\nold figures\n\n## Licence\n\nPublic domain.\n")
    assert main(["--cache-dir", str(tmp_path / "c"), "--write-readme", "--readme", str(readme), *TINY]) == 0
    text = readme.read_text()
    assert "old figures" not in text and text.count(SECTION) == 1
    assert text.startswith("# Data\n\nIntro.\n") and text.endswith("## Licence\n\nPublic domain.\n")
    assert "| train | 400 |" in text and "python -m translate.data.report" in text
    replace_section(readme, "new body\n", "cmd")  # idempotent swap, other sections untouched
    assert "| train |" not in readme.read_text() and "## Licence" in readme.read_text()


def test_bad_input_exits_2_with_one_error_line(tmp_path, capsys):
    assert main(["--cache-dir", str(tmp_path), "data.path=tests/fixtures/no_such_corpus"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: data.path:") and "no_such_corpus" in err and err.count("\n") == 1
    assert main(["--data", "bible_en_es"]) == 2
    assert "wmt14_en_fr" in capsys.readouterr().err  # Hydra lists the available data configs
