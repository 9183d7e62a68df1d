"""Evaluate checkpoints on one split: translate, score (BLEU, chrF, BLEU by length), draw alignments, report.

The Hydra entry point (translate/evaluate.py) and scripts/compare.py both call `evaluate_checkpoints`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from translate.data.pipeline import prepare_data
from translate.engines import engine_device, load_engine
from translate.evaluation.alignment import draw_alignments
from translate.evaluation.config import EvalSettings
from translate.evaluation.report import markdown_report, plot_bleu_by_length
from translate.files import write_json, write_lines, write_text
from translate.metrics.bleu import corpus_scores, sentence_stats
from translate.metrics.by_length import bleu_by_length, bootstrap_interval
from translate.metrics.terms import repetition_rate, term_success
from translate.models.checkpoint import CheckpointError, first_line, load_checkpoint, model_label
from translate.search.glossary import read_glossary

log = logging.getLogger(__name__)


def evaluate_one(path: str | Path, label: str, s: EvalSettings, out_dir: Path) -> dict:
    """Translate the split with one checkpoint (or exported model directory, engine ct2), write its hypotheses
    and alignments -> its results entry."""
    device = engine_device(s.device, s.quantize)
    engine = load_engine(s.engine, path, device=device, quantize=s.quantize)
    tokenizer = engine.tokenizer
    data = engine.data_config
    if data is None:
        raise CheckpointError(f"{path}: checkpoint lacks the training config's data section")
    try:
        data_cfg = OmegaConf.create(dict(data))
    except Exception as e:  # not a mapping, or values OmegaConf cannot hold
        raise CheckpointError(f"{path}: unusable data config in the checkpoint ({first_line(e)})") from e
    ds = prepare_data(data_cfg, s.cache_dir, splits=(s.split,), tokenizer=tokenizer).datasets[s.split]
    sources, refs = list(ds["src"]), list(ds["tgt"])

    glossary = read_glossary(s.glossary) if s.glossary else None
    src_ids = list(ds["src_ids"])
    constraints = glossary.constraints(tokenizer, src_ids) if glossary else None
    start = time.perf_counter()
    hyps = engine.translate_ids(src_ids, s.search, progress=s.progress, desc=f"{label} {s.split}",
                                constraints=constraints)  # fmt: skip
    seconds = time.perf_counter() - start
    best_ids = [h[0].tokens for h in hyps]
    texts = [tokenizer.decode(ids, "tgt") for ids in best_ids]
    terms = None
    if glossary:
        hits, total = term_success(glossary.terms, sources, texts)
        terms = {"glossary": s.glossary, "terms": len(glossary), "occurrences": total, "produced": hits,
                 "success": hits / total if total else None}  # fmt: skip
        log.info("%s: glossary terms produced %d of %d", label, hits, total)

    scores = corpus_scores(texts, refs)
    stats = sentence_stats(texts, refs)
    ci = bootstrap_interval(np.asarray(stats), s.bootstrap)
    buckets = bleu_by_length(sources, texts, refs, bootstrap=s.bootstrap)
    log.info("%s: BLEU %.2f chrF %.2f  (%s)", label, scores["bleu"], scores["chrf"], scores["bleu_signature"])

    hyp_file = Path("hypotheses") / f"{label}.{s.split}.txt"
    write_lines(out_dir / hyp_file, texts)
    chosen = [i for i in s.alignments if 0 <= i < len(sources)]
    pictures = []
    if engine.model is not None:  # the weights come from our model's attention (an Engine without one: none)
        pictures = draw_alignments(
            engine.model, tokenizer, [sources[i] for i in chosen], [best_ids[i] for i in chosen],
            out_dir / "alignments", label,
        )  # fmt: skip
    return {
        "label": label,
        "checkpoint": str(path),
        "model": engine.info["target"],
        "engine": s.engine,
        "quantization": engine.info["quantization"],
        "parameters": engine.info["parameters"],
        "step": engine.info["step"],
        "data": str(data_cfg.get("name", "")),
        "sentences": len(texts),
        "bleu": scores["bleu"],
        "bleu_ci": list(ci),
        "chrf": scores["chrf"],
        "bleu_signature": scores["bleu_signature"],
        "chrf_signature": scores["chrf_signature"],
        "buckets": buckets,
        "hypotheses": str(hyp_file),
        "alignments": [str(p.relative_to(out_dir)) for p in pictures],
        "repetition_rate": repetition_rate(texts, s.copies),
        "terms": terms,
        "decode_seconds": seconds,
        "sentences_per_second": len(texts) / max(seconds, 1e-9),
    }


def unique_labels(
    paths: list[str | Path], labels: list[str] | None, engine: str = "torch", quantize: str = "none"
) -> list[str]:
    """Given labels, or the model class per checkpoint with the run directory added where classes repeat
    (engine ct2: the class of each export plus "-ct2"; quantize int8: "-int8" added)."""
    if labels:
        if len(labels) != len(paths):
            raise ValueError(f"labels: {len(labels)} given for {len(paths)} checkpoints")
        repeated = sorted({str(x) for x in labels if list(labels).count(x) > 1})
        if repeated:  # each label names its own hypotheses and alignment files
            which = ", ".join(repeated)
            raise ValueError(f"labels: {which} given twice or more; each checkpoint needs its own")
        return list(labels)
    if engine == "ct2":
        from translate.engines.ct2 import read_meta

        names = [f"{read_meta(Path(p))['model']}-ct2" for p in paths]
    else:
        suffix = "-int8" if quantize == "int8" else ""
        names = [model_label(load_checkpoint(p), p) + suffix for p in paths]
    out = []
    for name, p in zip(names, paths):
        run = Path(p).resolve().parent.parent.name if Path(p).parent.name == "checkpoints" else Path(p).stem
        out.append(f"{name}-{run}" if names.count(name) > 1 else name)
    if len(set(out)) < len(out):
        out = [f"{name}-{i}" for i, name in enumerate(out)]
    return out


def evaluate_checkpoints(paths: list[str | Path], out_dir: str | Path, s: EvalSettings) -> dict:
    """Evaluate every checkpoint in `paths` (the entry point resolves s.checkpoints into them), labelled
    s.labels, then write results.json, results.md and bleu_by_length.png into out_dir."""
    out_dir = Path(out_dir)
    labels = unique_labels(paths, s.labels, s.engine, s.quantize)
    models = [evaluate_one(p, label, s, out_dir) for p, label in zip(paths, labels)]
    results = {
        "split": s.split,
        "search": asdict(s.search),
        "bootstrap": asdict(s.bootstrap),
        "models": models,
    }
    write_json(out_dir / "results.json", results)
    write_text(out_dir / "results.md", markdown_report(results))
    plot_bleu_by_length(results, out_dir / "bleu_by_length.png")
    return results
