"""The training batches of a data config: padding share, shape variety and the time to collate each one.

    python scripts/bench_batches.py                                  # bible_es_en, trainer.max_tokens 3000
    python scripts/bench_batches.py --max-tokens 1500,3000,6000 --epochs 3
    python scripts/bench_batches.py data.path=tests/fixtures/bible_tiny --max-tokens 200   # any data override

What the training loop sees from translate/data/batching.py (make_batches: length-bucketed, shuffled by
(seed, epoch)), measured without a model: per `--max-tokens`, over `--epochs` epochs, the share of padded
positions in the sources (B x S) and the targets (B x T), the distinct (B, S, T) shapes (each one a new
graph for torch.compile without dynamic shapes), and the main thread's time per batch to fetch the rows
from Arrow and collate them (median and mean, in ms). Prints a markdown table; --json writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from translate import allocator

if __name__ == "__main__":
    allocator.preload()  # first: re-executes under mimalloc before torch is imported (translate/allocator.py)

import torch  # noqa: E402

from translate.data.batching import make_batches  # noqa: E402
from translate.data.config import CACHE_DIR, compose_data_config  # noqa: E402
from translate.data.pipeline import prepare_data  # noqa: E402
from translate.data.vocab import PAD_ID  # noqa: E402
from translate.files import write_text  # noqa: E402
from translate.training.config import TrainConfig, TrainerConfig  # noqa: E402


def batch_stats(dataset, max_tokens: int, epochs: int, seed: int) -> dict:
    """Padding, shapes and collation time of `epochs` epochs of training batches at `max_tokens`."""
    src_real = src_all = tgt_real = tgt_all = 0
    shapes: set[tuple[int, int, int]] = set()
    per_batch: list[float] = []
    for epoch in range(epochs):
        batches = make_batches(dataset, max_tokens, shuffle=True, seed=seed, epoch=epoch)
        while True:
            start = time.perf_counter()
            b = next(batches, None)
            if b is None:
                break
            per_batch.append(time.perf_counter() - start)
            src_real += int(b.src.ne(PAD_ID).sum())
            src_all += b.src.numel()
            tgt_real += b.n_tgt_tokens
            tgt_all += b.tgt_out.numel()
            shapes.add((b.src.size(0), b.src.size(1), b.tgt_out.size(1)))
    return {
        "max_tokens": max_tokens,
        "batches_per_epoch": len(per_batch) / epochs,
        "target_tokens_per_batch": tgt_real / len(per_batch),
        "src_padding": 1 - src_real / src_all,
        "tgt_padding": 1 - tgt_real / tgt_all,
        "distinct_shapes": len(shapes),
        "distinct_batch_sizes": len({s[0] for s in shapes}),
        "collate_ms_median": 1e3 * statistics.median(per_batch),
        "collate_ms_mean": 1e3 * statistics.mean(per_batch),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("overrides", nargs="*", help="data.<key>=<value> overrides of the data config")
    p.add_argument("--data", default="bible_es_en", help="a conf/data name")
    p.add_argument("--max-tokens", default=str(TrainerConfig.max_tokens), help="comma-separated")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--seed", type=int, default=TrainConfig.seed)
    p.add_argument("--threads", type=int, default=1, help="torch threads (the loop collates on one)")
    p.add_argument("--cache-dir", default=CACHE_DIR, help="tokenizer and encoded-corpus cache, as training's")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data_cfg = compose_data_config(args.data, args.overrides)
    train = prepare_data(data_cfg, args.cache_dir, splits=("train",)).datasets["train"]
    rows = [batch_stats(train, int(m), args.epochs, args.seed) for m in args.max_tokens.split(",")]
    print(f"data={args.data}, {len(train):,} training pairs, {args.epochs} epoch(s), seed {args.seed}\n")
    print("| max_tokens | batches / epoch | target tokens / batch | source padding | target padding | "
          "distinct (B, S, T) | distinct B | collate ms / batch (median, mean) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['max_tokens']:,} | {r['batches_per_epoch']:,.0f} | "
              f"{r['target_tokens_per_batch']:,.0f} | "
              f"{r['src_padding']:.1%} | {r['tgt_padding']:.1%} | {r['distinct_shapes']:,} | "
              f"{r['distinct_batch_sizes']} | {r['collate_ms_median']:.1f}, {r['collate_ms_mean']:.1f} |")
    if args.json:
        write_text(args.json, json.dumps({"settings": vars(args) | {"json": str(args.json)}, "rows": rows},
                                         indent=2) + "\n")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
