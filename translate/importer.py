"""`translate import marian SOURCE -o checkpoint.pt`, also `make import SOURCE=... OUT=...`.

SOURCE is a transformers MarianMTModel directory (config.json, model.safetensors or pytorch_model.bin,
source.spm, target.spm, vocab.json) or a hub id such as Helsinki-NLP/opus-mt-es-en, downloaded with
huggingface_hub (the only step that uses the network). The checkpoint is an ordinary one of ours
(translate/models/marian.py says how the model maps): `translate`, `translate serve`, `make eval`,
`translate export` and `trainer.init_from=` read it as any other. Errors are one line,
`translate import: error: ...`, exit status 2; the file is written atomically.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from translate.models.checkpoint import save_checkpoint
from translate.models.marian import MarianImportError, import_marian

PROG = "translate import"
CONF = Path(__file__).resolve().parents[1] / "conf" / "data"
EMBEDDED = {("es", "en"): "bible_es_en"}  # a pair with an embedded corpus: what `make eval` evaluates on


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Import a pretrained model as a checkpoint of ours.")
    p.add_argument("family", choices=["marian"], help="marian: MarianMT / OPUS-MT (transformers layout)")
    p.add_argument("source", help="a model directory, or a hub id (e.g. Helsinki-NLP/opus-mt-es-en)")
    p.add_argument("-o", "--output", required=True, help="the checkpoint file to write")
    p.add_argument("--src-lang", help="source language (default: from tokenizer_config.json or the name)")
    p.add_argument("--tgt-lang", help="target language code (default: as --src-lang)")
    p.add_argument("--data", help="conf/data/<name>.yaml to record as the evaluation data (default: the "
                   "embedded corpus for es-en, else none)")  # fmt: skip
    p.add_argument("--cache-dir", help="huggingface_hub cache for a hub id (default: its own)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    return p


def data_config(name: str | None, pair: tuple[str, str] | None) -> dict | None:
    from omegaconf import OmegaConf

    name = name or (EMBEDDED.get(pair) if pair else None)
    if name is None:
        return None
    path = CONF / f"{name}.yaml"
    if not path.is_file():
        raise MarianImportError(f"--data {name}: no {path}")
    return OmegaConf.to_container(OmegaConf.load(path))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.output)
    try:
        if out.exists() and not args.force:
            raise MarianImportError(f"{out}: already exists (use --force to replace it)")
        payload = import_marian(args.source, src_lang=args.src_lang, tgt_lang=args.tgt_lang,
                                cache_dir=args.cache_dir)  # fmt: skip
        data = payload["config"]["data"]
        pair = (data["src_lang"], data["tgt_lang"])
        recorded = data_config(args.data, pair)
        if recorded is not None:
            if (recorded.get("src_lang"), recorded.get("tgt_lang")) != pair:
                raise MarianImportError(f"--data {args.data}: its pair {recorded.get('src_lang')}-"
                                        f"{recorded.get('tgt_lang')} is not the model's {pair[0]}-{pair[1]}")
            payload["config"]["data"] = recorded
        save_checkpoint(out, payload)
    except (MarianImportError, OSError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    mc = payload["model_config"]
    size = len(payload["tokenizer"]["vocab"])
    print(f"{out}: {args.source} ({pair[0]}-{pair[1]}, {mc['encoder_layers']}+{mc['decoder_layers']} layers, "
          f"d {mc['d_model']}, vocabulary {size})", file=sys.stderr)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
