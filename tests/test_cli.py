"""The `translate` CLI on a tiny real checkpoint: arguments, files, stdin streaming, prompt, errors."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from translate.cli import main
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


def reference(ckpt, lines, beam=5, nbest=1, max_len=6):
    """What the CLI should print: translate_ids on the same model, decoded, nbest joined by tabs."""
    model, tok, _ = load_model(ckpt)
    search = SearchConfig(beam_size=beam, nbest=nbest, max_len_a=0.0, max_len_b=max_len)
    hyps = translate_ids(model, [tok.encode(s, "src") for s in lines], search)
    return ["\t".join(tok.decode(h.tokens, "tgt") for h in nb) for nb in hyps]


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
    monkeypatch.setattr(sys, "stdin", io.StringIO("Dios es amor.\n\nLa luz.\n"))
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["-c", str(ckpt), *FAST]) == 0
    assert out.getvalue().split("\n")[:3] == [
        *reference(ckpt, ["Dios es amor."]),
        "",
        *reference(ckpt, ["La luz."]),
    ]
    assert writes == [1, 2, 3]  # flushed after every line


def test_interactive_prompt_at_a_terminal(ckpt, monkeypatch, capsys):
    stdin = io.StringIO("Dios es amor.\n")
    stdin.isatty = lambda: True
    monkeypatch.setattr(sys, "stdin", stdin)
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


def test_bad_options_exit_2(ckpt):
    bad_args = (["--beam", "0"], ["--beam", "2", "--nbest", "3"], ["--max-len-a", "0", "--max-len-b", "0"],
                ["x", "-i", "f"])  # fmt: skip
    for bad in bad_args:
        with pytest.raises(SystemExit) as e:
            main(["-c", str(ckpt), *bad])
        assert e.value.code == 2


def test_default_checkpoint_and_subprocess_pipe(ckpt):
    """`translate` with no --checkpoint finds runs/**/checkpoints/best.pt under the working directory."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cwd = ckpt.parents[3]  # holds runs/r1/checkpoints/best.pt
    done = subprocess.run([sys.executable, "-m", "translate.cli", *FAST], input="Dios es amor.\n\nLa luz.\n",
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n") == [
        *reference(ckpt, ["Dios es amor."]),
        "",
        *reference(ckpt, ["La luz."]),
        "",
    ]
