"""`make eval CKPT=a.pt,b.pt` = `python -m translate.evaluate 'checkpoints=[a.pt,b.pt]'`: the Hydra app.

`make eval ENGINE=ct2 CKPT=DIR` evaluates a `translate export` directory with CTranslate2 (engine=ct2);
`make eval QUANTIZE=int8` our engine in PyTorch dynamic int8 (quantize=int8); `make eval GLOSSARY=terms.tsv`
enforces a glossary (glossary=terms.tsv) and reports its term success rate.

Composes conf/evaluate.yaml, runs translate.evaluation.evaluator in the Hydra run directory, prints the
scores with their sacrebleu signatures; user-facing errors become one line on stderr and exit code 2.
"""

from translate import allocator

if __name__ == "__main__":
    allocator.preload()  # first: re-executes under mimalloc before torch is imported (translate/allocator.py)

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import to_absolute_path
from omegaconf import DictConfig

from translate.data.errors import DataError
from translate.engines import EngineError
from translate.evaluation.evaluator import EvalSettings, evaluate_checkpoints
from translate.models.checkpoint import CheckpointError, newest_best_checkpoint
from translate.search import SearchConfig
from translate.search.config import register_with_hydra

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")
register_with_hydra()  # conf/evaluate.yaml's search node


def settings(cfg: DictConfig) -> EvalSettings:
    return EvalSettings(
        split=cfg.split,
        device=cfg.device,
        cache_dir=to_absolute_path(cfg.cache_dir),
        search=SearchConfig(**cfg.search),
        n_boot=cfg.bootstrap.resamples,
        seed=cfg.bootstrap.seed,
        confidence=cfg.bootstrap.confidence,
        alignment_sentences=tuple(cfg.alignments),
        progress=cfg.progress,
        engine=cfg.engine,
        quantize=cfg.quantize,
        glossary=to_absolute_path(cfg.glossary) if cfg.glossary else None,
    )


def summary(results: dict, out_dir: Path) -> str:
    lines = []
    for m in results["models"]:
        lo, hi = m["bleu_ci"]
        terms = m.get("terms")
        produced = f"  glossary terms {terms['produced']}/{terms['occurrences']}" if terms else ""
        lines.append(
            f"{m['label']}: BLEU {m['bleu']:.2f} [{lo:.1f}, {hi:.1f}]  chrF {m['chrf']:.2f}  "
            f"repeating {100 * m['repetition_rate']:.1f}%{produced}  ({m['checkpoint']})"
        )
    if results["models"]:
        lines.append(f"BLEU signature: {results['models'][0]['bleu_signature']}")
        lines.append(f"chrF signature: {results['models'][0]['chrf_signature']}")
    lines.append(f"report: {out_dir}/results.md, {out_dir}/bleu_by_length.png, {out_dir}/results.json")
    return "\n".join(lines)


@hydra.main(config_path=CONF_DIR, config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    logging.getLogger("translate").setLevel(logging.INFO)
    logging.getLogger("translate").info("allocator: %s", allocator.describe())
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        paths = [to_absolute_path(p) for p in cfg.checkpoints] or [str(newest_best_checkpoint())]
        results = evaluate_checkpoints(paths, out_dir, settings(cfg), labels=list(cfg.labels))
    except (DataError, CheckpointError, EngineError, FileNotFoundError, ValueError) as e:  # GlossaryError too
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(summary(results, out_dir), flush=True)


if __name__ == "__main__":
    main()
