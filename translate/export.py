"""`translate export CKPT --format ct2 --quantization int8 -o DIR`, also `make export`.

Writes a trained Transformer checkpoint as a CTranslate2 model directory (translate/engines/ct2_export.py),
then `translate --engine ct2 --model-dir DIR` and `make eval ENGINE=ct2 CKPT=DIR` use it. Errors are one
line, `translate export: error: ...`, exit status 2; the directory appears only when complete.
"""

from __future__ import annotations

import argparse
import sys

from translate.engines.ct2 import runs_as_exported
from translate.engines.ct2_export import QUANTIZATIONS, ExportError, cpu_compute_type, export_ct2
from translate.models.checkpoint import CheckpointError

PROG = "translate export"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Export a checkpoint for another inference engine.")
    p.add_argument("checkpoint", help="a Transformer checkpoint, e.g. runs/<run>/checkpoints/best.pt")
    p.add_argument("--format", default="ct2", choices=["ct2"], help="ct2: a CTranslate2 model directory")
    p.add_argument("--quantization", default="int8", choices=QUANTIZATIONS,
                   help="weight type in the exported model (default: int8); int16 runs as int8 off Intel "
                        "CPUs, float16 as float32 on every CPU")  # fmt: skip
    p.add_argument("-o", "--output", required=True, help="output directory (written under a temporary name)")
    p.add_argument("--force", action="store_true", help="replace an existing output directory")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        out = export_ct2(args.checkpoint, args.output, args.quantization, force=args.force)
    except (CheckpointError, ExportError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except ImportError:
        print(f"{PROG}: error: --format ct2 needs ctranslate2: pip install -e '.[ct2]'", file=sys.stderr)
        return 2
    runs = cpu_compute_type(args.quantization)
    note = "" if runs_as_exported(args.quantization, runs) else (
        f"; CTranslate2 runs it as {runs} on this CPU (see translate/engines/README.md)")  # fmt: skip
    print(f"{out}: CTranslate2 model ({args.quantization}) from {args.checkpoint}{note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
