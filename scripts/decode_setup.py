"""What the decoding scripts (ab_decode.py, profile_decode.py) share: their flags for the engine and the
search, and the engine, the first test verses of its checkpoint's data and the search they decode."""

from __future__ import annotations

import argparse

import torch
from omegaconf import OmegaConf

from translate.data.config import CACHE_DIR
from translate.data.pipeline import prepare_data
from translate.engines.pytorch import TorchEngine
from translate.search import SearchConfig


def add_decode_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--sentences", type=int, default=300, help="first test verses (0 = all)")
    p.add_argument("--beam", type=int, default=5, help="1 = greedy")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quantize", default="none", help="none | int8 (ours dynamic int8)")
    p.add_argument("--repeat-guard", type=int, default=SearchConfig.repeat_guard)
    p.add_argument("--cache-dir", default=CACHE_DIR)


def decode_setup(args: argparse.Namespace) -> tuple[TorchEngine, list[list[int]], SearchConfig]:
    """(engine, the first --sentences test verses' source ids, the search), on --threads threads, the
    engine warmed up on the first 8 verses."""
    torch.set_num_threads(args.threads)
    engine = TorchEngine(args.checkpoint, quantize=args.quantize)
    data_cfg = OmegaConf.create(engine.ckpt["config"]["data"])
    data = prepare_data(data_cfg, args.cache_dir, splits=("test",), tokenizer=engine.tokenizer)
    test = data.datasets["test"]
    src = [list(r) for r in test["src_ids"][: args.sentences or None]]
    search = SearchConfig(beam_size=args.beam, repeat_guard=args.repeat_guard)
    engine.translate_ids(src[:8], search)  # warm-up
    return engine, src, search
