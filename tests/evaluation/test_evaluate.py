"""Evaluation end to end on tiny untrained checkpoints: results.json, table, curves, alignments, Hydra app."""

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sacrebleu
import torch
from conftest import TINY_MODELS, tiny_data_config

from translate.data.pipeline import prepare_data
from translate.data.vocab import UNK_ID
from translate.evaluation.alignment import alignment_maps, to_words, word, word_groups
from translate.evaluation.evaluator import EvalSettings, evaluate_checkpoints, unique_labels
from translate.models.checkpoint import CheckpointError, load_model, newest_best_checkpoint, save_checkpoint
from translate.search import Hypothesis, SearchConfig

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("eval_cache")


@pytest.fixture(scope="module")
def checkpoints(cache, tmp_path_factory, tiny_checkpoint):
    """One tiny untrained checkpoint per model family, written the way training writes them."""
    return {name: tiny_checkpoint(tmp_path_factory.mktemp(name) / "checkpoints" / "best.pt", name, cache)
            for name in TINY_MODELS}  # fmt: skip


def eval_split(cache):
    """The fixture's test split, encoded by the tokenizer the tiny checkpoints carry (same corpus, cache)."""
    return prepare_data(tiny_data_config(), cache, splits=("test",)).datasets["test"]


def settings(cache, **kw):
    search = SearchConfig(beam_size=2, max_len_a=0.0, max_len_b=6)
    base = dict(cache_dir=str(cache), device="cpu", search=search, n_boot=20, alignment_sentences=(0,),
                progress=False)  # fmt: skip
    return EvalSettings(**{**base, **kw})


def test_evaluate_checkpoints_writes_a_consistent_report(checkpoints, cache, tmp_path):
    """Three model families end to end: what results.json says matches the files written beside it, and the
    scores are sacrebleu's (called directly) on the written hypotheses against the split's references."""
    paths = [checkpoints["transformer"], checkpoints["rnnsearch"], checkpoints["rnnencdec"]]
    results = evaluate_checkpoints(paths, tmp_path, settings(cache))
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(results))
    assert [m["label"] for m in on_disk["models"]] == ["Transformer", "RNNsearch", "RNNencdec"]
    refs = list(eval_split(cache)["tgt"])
    for m in on_disk["models"]:
        hyps = (tmp_path / m["hypotheses"]).read_text(encoding="utf-8").split("\n")[:-1]
        assert len(hyps) == len(refs) == m["sentences"]
        assert all(len(h.split()) <= 6 for h in hyps)
        assert m["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
        assert m["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
        assert m["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
        ranges = ["0-10", "10-20", "20-30", "30-40", "40-50", "50-60", "60+"]
        assert [b["range"] for b in m["buckets"]] == ranges
        assert sum(b["count"] for b in m["buckets"]) == len(refs)
        assert m["step"] == 7 and m["parameters"] > 0
    has_pictures = {m["label"]: len(m["alignments"]) for m in on_disk["models"]}
    assert has_pictures == {"Transformer": 1, "RNNsearch": 1, "RNNencdec": 0}
    for m in on_disk["models"]:
        for p in m["alignments"]:
            assert (tmp_path / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "bleu_by_length.png").read_bytes()[:4] == b"\x89PNG"
    table = (tmp_path / "results.md").read_text()
    assert "| Transformer |" in table and "| 0-10 | 10-20 |" in table and "tok:13a" in table


def test_scores_and_length_buckets_of_known_outputs(checkpoints, cache, tmp_path, monkeypatch):
    """A stub decoder with known outputs: sentence i gets its own reference when i % 3 != 2, else nothing.
    The hypotheses file, BLEU, chrF and each length bucket must be sacrebleu's on those texts, in order."""
    from translate.engines.pytorch import TorchEngine

    test = eval_split(cache)
    sources, refs, src_ids = list(test["src"]), list(test["tgt"]), [list(x) for x in test["src_ids"]]

    def known_outputs(self, ids, search, **kw):
        assert [list(x) for x in ids] == src_ids  # the whole split, in order
        return [[Hypothesis(self.tokenizer.encode(ref, "tgt") if i % 3 != 2 else [], 0.0)]
                for i, ref in enumerate(refs)]  # fmt: skip

    monkeypatch.setattr(TorchEngine, "translate_ids", known_outputs)
    m = evaluate_checkpoints([checkpoints["rnnsearch"]], tmp_path, settings(cache))["models"][0]
    tok = load_model(checkpoints["rnnsearch"])[1]
    expected = [tok.decode(tok.encode(ref, "tgt"), "tgt") if i % 3 != 2 else "" for i, ref in enumerate(refs)]
    assert (tmp_path / m["hypotheses"]).read_text(encoding="utf-8") == "".join(h + "\n" for h in expected)
    bleu = sacrebleu.corpus_bleu(expected, [refs]).score
    assert m["bleu"] == pytest.approx(bleu) and 40 < bleu < 100  # two thirds right: neither 0 nor perfect
    assert m["chrf"] == pytest.approx(sacrebleu.corpus_chrf(expected, [refs]).score)
    lo, hi = m["bleu_ci"]
    assert lo <= m["bleu"] <= hi
    words = [len(src.split()) for src in sources]
    for b in m["buckets"]:  # (lo, hi] source words; the first bucket also holds empty sources
        top = math.inf if b["hi"] is None else b["hi"]
        inside = [i for i, n in enumerate(words) if (b["lo"] < n or b["lo"] == 0) and n <= top]
        assert b["count"] == len(inside), b["range"]
        if inside:
            subset = sacrebleu.corpus_bleu([expected[i] for i in inside], [[refs[i] for i in inside]]).score
            assert b["bleu"] == pytest.approx(subset), b["range"]


def test_alignment_maps_are_distributions_over_the_source(checkpoints):
    from translate.models.checkpoint import load_model

    model, tok, _ = load_model(checkpoints["transformer"])
    src, tgt = tok.encode("Dios es amor.", "src"), tok.encode("God is love.", "tgt")
    maps = alignment_maps(model, src, tgt)
    assert set(maps) == {"layer0", "layer1", "mean"}
    for w in maps.values():
        assert w.shape == (len(tgt) + 1, len(src) + 1)
        assert torch.allclose(w.sum(-1), torch.ones(len(tgt) + 1), atol=1e-5)
    model, tok, _ = load_model(checkpoints["rnnsearch"])
    assert list(alignment_maps(model, src, tgt)) == ["additive"]


def test_word_level_maps_keep_rows_distributions_and_group_by_spaces():
    pieces = ["\u2581Y", "\u2581acae", "ci\u00f3", "\u2581que", ","]
    assert word_groups(pieces) == [[0], [1, 2], [3, 4]]
    assert word(pieces, [1, 2]) == "acaeci\u00f3" and word(pieces, [3, 4]) == "que,"
    w = torch.softmax(torch.randn(4, 6), -1)  # (T pieces + EOS, S pieces + EOS)
    src, tgt = word_groups(pieces) + [[5]], [[0, 1], [2], [3]]
    words = to_words(w, src, tgt)  # (3, 4)
    assert words.shape == (3, 4)
    assert torch.allclose(words.sum(-1), torch.ones(3))
    assert torch.allclose(words[0, 1], (w[0, 1] + w[0, 2] + w[1, 1] + w[1, 2]) / 2)
    assert torch.allclose(words[2, 3], w[3, 5])


def test_alignment_labels_show_the_source_text_of_unknown_pieces(checkpoints, tmp_path, monkeypatch):
    from translate.evaluation import alignment
    from translate.models.checkpoint import load_model

    model, tok, _ = load_model(checkpoints["rnnsearch"])
    text = "Dios \u2603 es \u0416\u0416amor."  # a snowman and Cyrillic: not in the fixture vocabulary
    assert UNK_ID in tok.encode(text, "src")
    seen = {}
    monkeypatch.setattr(alignment, "plot_alignment", lambda maps, src, tgt, path, title: seen.update(src=src))
    alignment.draw_alignments(model, tok, [text], [tok.encode("God is love.", "tgt")], tmp_path, "x")
    assert seen["src"] == ["Dios", "\u2603", "es", "\u0416\u0416amor.", "</s>"]


def test_labels_disambiguate_repeated_model_classes(checkpoints, tmp_path):
    a = checkpoints["rnnsearch"]
    b = tmp_path / "other" / "checkpoints" / "best.pt"
    b.parent.mkdir(parents=True)
    b.write_bytes(a.read_bytes())
    labels = unique_labels([a, b, checkpoints["transformer"]], None)
    assert (
        labels[0].startswith("RNNsearch-") and labels[1] == "RNNsearch-other" and labels[2] == "Transformer"
    )
    assert unique_labels([a], ["mine"]) == ["mine"]
    with pytest.raises(ValueError, match="1 given for 2"):
        unique_labels([a, b], ["x"])


def test_newest_best_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match="no checkpoints/best.pt under runs/ or outputs/"):
        newest_best_checkpoint()
    old, new = tmp_path / "runs/a/checkpoints/best.pt", tmp_path / "runs/b/checkpoints/best.pt"
    for p in (old, new):
        p.parent.mkdir(parents=True)
        p.write_bytes(b"x")
    (tmp_path / "runs/b/checkpoints/last.pt").write_bytes(b"x")
    os.utime(old, (time.time() + 10, time.time() + 10))
    assert newest_best_checkpoint() == Path("runs/a/checkpoints/best.pt")


def test_hydra_app_finds_the_newest_run_and_respects_run_dir(checkpoints, cache, tmp_path):
    run = tmp_path / "runs" / "2026-01-01_00-00-00" / "checkpoints"
    run.mkdir(parents=True)
    (run / "best.pt").write_bytes(checkpoints["rnnsearch"].read_bytes())
    cmd = [sys.executable, "-m", "translate.evaluate", "hydra.run.dir=report", f"cache_dir={cache}",
           "search.beam_size=1", "search.max_len_a=0", "search.max_len_b=4", "bootstrap.resamples=10",
           "alignments=[]", "progress=false"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "BLEU signature: nrefs:1|case:mixed" in done.stdout
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    assert results["models"][0]["checkpoint"].endswith("runs/2026-01-01_00-00-00/checkpoints/best.pt")


@pytest.mark.parametrize("bad", ["missing", "3 bytes", "random bytes", "tokenizer", "model", "config"])
def test_hydra_app_reports_a_bad_checkpoint_in_one_line(checkpoints, bad, tmp_path, monkeypatch, capsys):
    import logging

    from translate import evaluate

    path = tmp_path / f"{bad.replace(' ', '_')}.pt"
    if bad == "3 bytes":
        path.write_bytes(b"\x80\x02.")
    elif bad == "random bytes":
        path.write_bytes(bytes(torch.randint(0, 256, (3000,)).tolist()))
    elif bad != "missing":  # a real checkpoint with one entry of the wrong type
        payload = torch.load(checkpoints["rnnsearch"], weights_only=True)
        wrong = {"tokenizer": ["not", "a", "dict"], "model": 3, "config": {"data": 5}}[bad]
        save_checkpoint(path, {**payload, bad: wrong})

    root = logging.getLogger()  # Hydra configures logging in-process: put it back afterwards
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    package = logging.getLogger("translate")
    monkeypatch.setattr(package, "level", package.level)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["evaluate", f"checkpoints=[{path}]", "hydra.run.dir=out",
                                      f"cache_dir={tmp_path / 'cache'}", "progress=false"])  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {path}: "), err
    if bad == "missing":
        assert err[0].endswith("missing.pt: no such checkpoint file")


def test_repeated_labels_are_refused_before_anything_is_written(checkpoints, cache, tmp_path):
    a, b = checkpoints["rnnsearch"], checkpoints["transformer"]
    with pytest.raises(ValueError, match="^labels: x given twice or more; each checkpoint needs its own$"):
        evaluate_checkpoints([a, b], tmp_path / "out", settings(cache), labels=["x", "x"])
    assert not (tmp_path / "out").exists()


def test_nan_logits_are_a_clear_error_naming_the_sentence(checkpoints, cache, tmp_path, monkeypatch):
    from translate.engines import pytorch
    from translate.search import SearchError

    def broken_model(path, device):
        model, tok, ckpt = load_model(path, device)
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(float("nan"))
        return model, tok, ckpt

    monkeypatch.setattr(pytorch, "load_model", broken_model)  # what the evaluator's torch engine loads with
    with pytest.raises(SearchError, match=r"^source sentence \d+, \d+, .*: no hypothesis with a finite"):
        evaluate_checkpoints([checkpoints["transformer"]], tmp_path, settings(cache))


def test_a_glossary_is_enforced_and_scored(checkpoints, cache, tmp_path):
    """settings.glossary (make eval GLOSSARY=...): every occurrence's target term is produced, counted in
    results.json and results.md; a bad glossary line is a one-line error naming the file and line."""
    sources = list(eval_split(cache)["src"])
    word = next(w for w in ("Dios", "Jehová", "Israel") if any(w in s for s in sources))
    glossary = tmp_path / "terms.tsv"
    glossary.write_text(f"{word}\tLord\n", encoding="utf-8")
    s = settings(cache, search=SearchConfig(beam_size=3, max_len_a=0.0, max_len_b=8), glossary=str(glossary))
    m = evaluate_checkpoints([checkpoints["transformer"]], tmp_path / "out", s)["models"][0]
    assert m["terms"]["occurrences"] >= 1 and m["terms"]["produced"] == m["terms"]["occurrences"]
    shown = f"{m['terms']['produced']} of {m['terms']['occurrences']}"
    assert shown in (tmp_path / "out/results.md").read_text()
    glossary.write_text(f"{word} Lord\n", encoding="utf-8")
    with pytest.raises(ValueError, match="terms.tsv:1: expected"):
        evaluate_checkpoints([checkpoints["transformer"]], tmp_path / "out2", s)
