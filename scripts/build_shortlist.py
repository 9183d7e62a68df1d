"""Build a vocabulary shortlist for a checkpoint (translate/search/shortlist.py): per source piece its
--per-source target pieces by co-occurrence (Dice over the training pairs of the checkpoint's data config,
encoded with its tokenizer), plus the --frequent target pieces found in the most training translations.

    .venv/bin/python scripts/build_shortlist.py --checkpoint runs/<run>/checkpoints/best.pt -o shortlist.pt
    .venv/bin/translate -c runs/<run>/checkpoints/best.pt --shortlist shortlist.pt "Dios es amor."
    .venv/bin/python scripts/bench_decode.py --engines torch --shortlist shortlist.pt --checkpoints ...

It prints, on the dev split, the share of reference target pieces inside their own sentence's shortlist (what
the shortlist keeps of what a translation needs) and the mean shortlist size of one sentence; a decoding
batch uses the union over its sentences. Counting holds a dense V_src x V_tgt int32 table (256 MiB for the
default 8k joint vocabulary) and takes seconds.
"""

from __future__ import annotations

import argparse
import sys

from omegaconf import OmegaConf

from translate.data.config import CACHE_DIR
from translate.data.pipeline import prepare_data
from translate.models.checkpoint import CheckpointError, load_model
from translate.search.shortlist import coverage, learn_shortlist


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", "-c", required=True, help="the model the shortlist serves")
    p.add_argument("--out", "-o", required=True, help="the shortlist file to write")
    p.add_argument("--frequent", type=int, default=100, help="target pieces in every shortlist (default 100)")
    p.add_argument("--per-source", type=int, default=50, help="candidates per source piece (default 50)")
    p.add_argument("--cache-dir", default=CACHE_DIR)
    args = p.parse_args(argv)
    if args.frequent < 0 or args.per_source < 1:
        p.error("--frequent must be >= 0 and --per-source >= 1")
    try:
        model, tok, ckpt = load_model(args.checkpoint, "cpu")
    except CheckpointError as e:
        print(f"build_shortlist: error: {e}", file=sys.stderr)
        return 2
    del model
    data = prepare_data(OmegaConf.create(ckpt["config"]["data"]), args.cache_dir, splits=("train", "dev"),
                        tokenizer=tok)  # fmt: skip
    train = data.datasets["train"]
    pairs = zip(train["src_ids"], train["tgt_ids"])
    sl = learn_shortlist(pairs, tok.src_vocab_size, tok.tgt_vocab_size, frequent=args.frequent,
                         per_source=args.per_source, tokenizer=tok.fingerprint)  # fmt: skip
    sl.save(args.out)
    dev = data.datasets["dev"]
    share, size = coverage(sl, zip(dev["src_ids"], dev["tgt_ids"]))
    print(f"{args.out}: {len(train)} training pairs, {args.frequent} frequent + {args.per_source} per source "
          f"piece; dev: {100 * share:.2f} % of the reference pieces covered, {size:.0f} target pieces per "
          f"sentence of {tok.tgt_vocab_size}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
