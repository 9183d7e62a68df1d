"""The `translate` CLI on a tiny real checkpoint: arguments, files, stdin streaming, prompt, errors."""

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from translate.cli import main
from translate.data.lines import one_line
from translate.models.checkpoint import load_model
from translate.search import SearchConfig, translate_ids

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--max-len-a", "0", "--max-len-b", "6"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, tiny_checkpoint) -> Path:
    """A tiny untrained Transformer with a SentencePiece tokenizer trained on the fixture corpus."""
    tmp = tmp_path_factory.mktemp("cli")
    return tiny_checkpoint(tmp / "runs" / "r1" / "checkpoints" / "best.pt", "transformer", tmp / "cache")


def stdin_of(data: bytes, tty: bool = False) -> io.TextIOWrapper:
    """A stand-in for sys.stdin: a text stream over bytes, as the real one is."""
    stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
    stdin.isatty = lambda: tty
    return stdin


def reference(ckpt, lines, beam=5, nbest=1, max_len=6):
    """What the CLI should print: each line's sentences (pysbd) decoded by translate_ids on the same model,
    joined by spaces after the line's indentation, n-best joined by tabs; an empty line for a line with no
    source ids."""
    import pysbd

    model, tok, _ = load_model(ckpt)
    search = SearchConfig(beam_size=beam, nbest=nbest, max_len_a=0.0, max_len_b=max_len)
    sents = [[s.strip() for s in pysbd.Segmenter(language="es", clean=False).segment(line) if s.strip()]
             if line.strip() else [] for line in lines]  # fmt: skip
    ids = [[i for i in (tok.encode(s, "src") for s in line) if i] for line in sents]
    hyps = iter(translate_ids(model, [i for line in ids for i in line], search))
    out = []
    for line, line_ids in zip(lines, ids):
        found = [next(hyps) for _ in line_ids]
        alts = [" ".join(t for t in (one_line(tok.decode(h[min(n, len(h) - 1)].tokens, "tgt")).strip()
                                     for h in found) if t)
                for n in range(nbest)]  # fmt: skip
        lead = one_line(line[: len(line) - len(line.lstrip())])
        out.append("\t".join(lead + a if a else "" for a in alts) if any(alts) else "")
    return out


def run_modes(ckpt, data: bytes, tmp_path, monkeypatch, capsys, *args) -> dict[str, tuple[list[str], str]]:
    """The same bytes through -i FILE -o FILE, -i FILE to stdout, stdin streaming and stdin -o FILE:
    mode -> (output lines, warning and error lines). Every run must exit 0."""
    (tmp_path / "in.txt").write_bytes(data)
    out_file = tmp_path / "out.txt"
    runs = {"file to file": ["-i", str(tmp_path / "in.txt"), "-o", str(out_file)],
            "file to stdout": ["-i", str(tmp_path / "in.txt")], "stdin streaming": [],
            "stdin to file": ["-o", str(out_file)]}  # fmt: skip
    results = {}
    for mode, flags in runs.items():
        out_file.unlink(missing_ok=True)
        monkeypatch.setattr(sys, "stdin", stdin_of(data))
        assert main(["-c", str(ckpt), *FAST, *args, *flags]) == 0, mode
        captured = capsys.readouterr()
        text = out_file.read_bytes().decode("utf-8") if "-o" in flags else captured.out
        assert text == "" or text.endswith("\n"), mode
        messages = [m for m in re.split(r"[\r\n]", captured.err) if m.startswith(("translate: warning:",
                    "translate: error:"))]  # fmt: skip (stderr also holds the progress bar)
        results[mode] = (text.split("\n")[:-1], messages)
    return results


def test_sentences_as_arguments(ckpt, capsys):
    assert main(["-c", str(ckpt), "Dios es amor.", "La luz.", *FAST]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == reference(ckpt, ["Dios es amor.", "La luz."])


def test_nbest_and_greedy(ckpt, capsys):
    assert main(["-c", str(ckpt), "Dios es amor.", "--beam", "3", "--nbest", "3", *FAST]) == 0
    line = capsys.readouterr().out.rstrip("\n")
    assert line.count("\t") == 2 and line == reference(ckpt, ["Dios es amor."], beam=3, nbest=3)[0]
    assert main(["-c", str(ckpt), "Dios es amor.", "--beam", "1", *FAST]) == 0
    assert capsys.readouterr().out.splitlines() == reference(ckpt, ["Dios es amor."], beam=1)


def test_file_to_file_keeps_lines_and_blank_lines(ckpt, tmp_path):
    lines = ["En el principio.", "", "Dios es amor.", "   ", "La luz."]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert (
        main(["-c", str(ckpt), "-i", str(tmp_path / "in.txt"), "-o", str(tmp_path / "out.txt"), *FAST]) == 0
    )
    out = (tmp_path / "out.txt").read_text(encoding="utf-8").split("\n")
    assert out[-1] == "" and len(out) - 1 == len(lines)
    assert out[1] == "" and out[3] == ""
    assert [out[0], out[2], out[4]] == reference(ckpt, [lines[0], lines[2], lines[4]])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_stdin_is_streamed_line_by_line(ckpt, monkeypatch, capsys):
    writes = []

    class Out(io.StringIO):
        def flush(self):
            writes.append(self.getvalue().count("\n"))

    out = Out()
    monkeypatch.setattr(sys, "stdin", stdin_of(b"Dios es amor.\n\nLa luz.\n"))
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["-c", str(ckpt), *FAST]) == 0
    assert out.getvalue().split("\n")[:3] == [
        *reference(ckpt, ["Dios es amor."]),
        "",
        *reference(ckpt, ["La luz."]),
    ]
    assert writes == [1, 2, 3]  # flushed after every line


def test_interactive_prompt_at_a_terminal(ckpt, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", stdin_of(b"Dios es amor.\n", tty=True))
    assert main(["-c", str(ckpt), *FAST]) == 0
    captured = capsys.readouterr()
    assert "Ctrl-D" in captured.err
    assert captured.out.replace("> ", "").splitlines() == reference(ckpt, ["Dios es amor."])


def test_a_long_line_is_split_translated_in_parts_and_joined_on_one_line(ckpt, capsys):
    from translate.service import ServiceConfig, Translator

    long = " ".join(["Dios es amor y la luz"] * 20) + ". La luz."
    assert main(["-c", str(ckpt), long, "--max-src-len", "40", *FAST]) == 0
    captured = capsys.readouterr()
    engine = Translator.load(ckpt, service=ServiceConfig(max_src_len=40))
    assert len(engine.plan([long]).units) > 2  # two sentences, the first cut into parts: nothing truncated
    search = SearchConfig(max_len_a=0.0, max_len_b=6)
    assert captured.out.splitlines() == [engine.translate([long], search)[0][0]]
    assert "warning" not in captured.err


def test_missing_and_corrupt_checkpoints_are_one_line_errors(tmp_path, capsys):
    assert main(["-c", str(tmp_path / "missing.pt"), "hola"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"translate: error: {tmp_path / 'missing.pt'}: no such checkpoint file"]
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint at all")
    assert main(["-c", str(tmp_path / "bad.pt"), "hola"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"translate: error: {tmp_path / 'bad.pt'}: ")
    assert main(["-c", str(tmp_path / "bad.pt"), "-i", str(tmp_path / "none.txt")]) == 2
    assert capsys.readouterr().err.strip() == f"translate: error: {tmp_path / 'none.txt'}: no such input file"


def test_bad_options_are_one_line_errors_exit_2(ckpt, capsys):
    bad_args = (["--beam", "0"], ["--beam", "2", "--nbest", "3"], ["--max-len-a", "0", "--max-len-b", "0"],
                ["x", "-i", "f"], ["--beam", "two"], ["--no-such-flag"])  # fmt: skip
    for bad in bad_args:
        with pytest.raises(SystemExit) as e:
            main(["-c", str(ckpt), *bad])
        assert e.value.code == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith("translate: error: ") and "usage" not in err[0], err


def test_lines_end_at_newline_only_and_a_trailing_cr_is_dropped(ckpt, tmp_path, monkeypatch, capsys):
    """str.splitlines() also breaks at \r, \x0b, \x0c, \x1c-\x1e, \x85, \u2028, \u2029: not here."""
    data = "Dios\res\x0bamor.\x0c\x1c\x1d\x1e\x85 La\u2028luz\u2029.\nEn el principio.\r\n\r\nLa luz"
    lines = ["Dios\res\x0bamor.\x0c\x1c\x1d\x1e\x85 La\u2028luz\u2029.", "En el principio.", "", "La luz"]
    expected = reference(ckpt, lines)
    for mode, (out, err) in run_modes(ckpt, data.encode(), tmp_path, monkeypatch, capsys).items():
        assert out == expected, mode
        assert err == [], mode


def test_invalid_utf8_is_replaced_and_named_in_one_warning(ckpt, tmp_path, monkeypatch, capsys):
    data = b"Dios es amor.\n\xff\nLa \xc3(luz.\n\xed\xa0\x80\nEn el principio.\n"
    lines = ["Dios es amor.", "\ufffd", "La \ufffd(luz.", "\ufffd\ufffd\ufffd", "En el principio."]
    expected = reference(ckpt, lines)
    assert expected[1] == "" and expected[2] != ""  # U+FFFD alone has no source ids
    for mode, (out, err) in run_modes(ckpt, data, tmp_path, monkeypatch, capsys).items():
        assert out == expected, mode
        assert err == [
            "translate: warning: lines 2, 3, 4: not valid UTF-8; the invalid bytes were replaced with U+FFFD"
        ], mode


def test_lines_with_no_source_ids_give_empty_lines(ckpt, tmp_path, monkeypatch, capsys):
    invisible = ["\x07", "\u200b", "\ufeff", "\u200b\ufeff\x07 \u200b"]
    _, tok, _ = load_model(ckpt)
    assert all(line.strip() and tok.encode(line, "src") == [] for line in invisible)  # the case at hand
    lines = ["Dios es amor.", *invisible, "La luz."]
    data = "\n".join(lines).encode() + b"\n"
    expected = ["", "", "", ""]
    for mode, (out, _) in run_modes(ckpt, data, tmp_path, monkeypatch, capsys).items():
        assert out[1:5] == expected and out[0] != "" and out[5] != "", mode
    assert main(["-c", str(ckpt), *FAST, "\u200b", "La luz."]) == 0
    assert capsys.readouterr().out.split("\n")[:2] == ["", *reference(ckpt, ["La luz."])]


def test_a_model_with_nan_scores_is_a_one_line_error_naming_the_line(ckpt, monkeypatch, capsys):
    from translate.engines import pytorch
    from translate.search import SearchError

    def broken(model, src_ids, search, **kw):
        raise SearchError([1], "source sentence")  # the second sentence handed to the search

    monkeypatch.setattr(pytorch, "translate_ids", broken)  # what the CLI's torch engine calls
    assert main(["-c", str(ckpt), *FAST, "Dios es amor.", "", "La luz."]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["translate: error: line 3: no hypothesis with a finite score (the model's logits are "
                   "NaN or infinite)"]  # fmt: skip


def test_default_checkpoint_and_subprocess_pipe(ckpt):
    """`translate` with no --checkpoint finds runs/**/checkpoints/best.pt under the working directory."""
    # the C locale and an ASCII stdio encoding: bytes in, UTF-8 out, whatever the locale says
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "LC_ALL": "C",
           "PYTHONIOENCODING": "ascii"}  # fmt: skip
    cwd = ckpt.parents[3]  # holds runs/r1/checkpoints/best.pt
    data = "Dios es amor.\n\nLa luz \u00e1\u00e9.\n".encode() + b"ok \xff\n"
    done = subprocess.run([sys.executable, "-m", "translate.cli", *FAST], input=data, cwd=cwd, env=env,
                          capture_output=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode("utf-8").split("\n") == [
        *reference(ckpt, ["Dios es amor."]),
        "",
        *reference(ckpt, ["La luz \u00e1\u00e9.", "ok \ufffd"]),
        "",
    ]
    assert done.stderr.decode().splitlines() == [
        "translate: warning: line 4: not valid UTF-8; the invalid bytes were replaced with U+FFFD"
    ]


def test_sampling_is_reproducible_from_the_seed(ckpt, capsys):
    args = ["-c", str(ckpt), "Dios es amor.", "La luz.", "--strategy", "sample",
            "--sampling-temperature", "2", *FAST]  # fmt: skip
    outs = []
    for seed in ("3", "3", "4", "5", "6"):
        assert main([*args, "--seed", seed]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] and len(set(outs[1:])) > 1
    model, tok, _ = load_model(ckpt)
    search = SearchConfig(strategy="sample", nbest=1, sampling_temperature=2.0, seed=3, max_len_a=0.0,
                          max_len_b=6)  # fmt: skip
    ids = [tok.encode(s, "src") for s in ("Dios es amor.", "La luz.")]
    want = [one_line(tok.decode(h[0].tokens, "tgt")).strip() for h in translate_ids(model, ids, search)]
    assert outs[0].splitlines() == want


def test_glossary_terms_are_produced_and_bad_glossaries_are_one_line_errors(ckpt, tmp_path, capsys):
    glossary = tmp_path / "terms.tsv"
    glossary.write_text("# test\nDios\tLord\nluz\tlight\n", encoding="utf-8")
    args = ["-c", str(ckpt), "Dios es amor.", "La luz.", "Nada.", "--glossary", str(glossary), *FAST]
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert "Lord" in out[0] and "light" in out[1] and out[2] == reference(ckpt, ["Nada."])[0]
    glossary.write_text("Dios\tLord\nluz light\n", encoding="utf-8")
    assert main(["-c", str(ckpt), "Dios.", "--glossary", str(glossary), *FAST]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("translate: error: ") and "terms.tsv:2: expected" in err[0]
    assert main(["-c", str(ckpt), "Dios.", "--glossary", str(tmp_path / "no.tsv"), *FAST]) == 2
    assert "no such glossary file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["-c", str(ckpt), "Dios.", "--glossary", str(glossary), "--beam", "1", *FAST])
    err = capsys.readouterr().err.splitlines()
    assert e.value.code == 2 and len(err) == 1 and "--glossary needs beam search" in err[0]
