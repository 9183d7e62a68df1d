"""Measure a decoding fast path against the code without it: the same process, runs alternating, medians.

    taskset -c 1 .venv/bin/python scripts/ab_decode.py --checkpoint best.pt --sentences 300 --beam 5 \
        --threads 1 --runs 5 --without topk

Each --without name swaps one fast path for its reference (VARIANTS below) in the "without" runs; the "with"
runs are the code as it is. Every run translates the same first test verses through TorchEngine.translate_ids
(the path bench_decode.py --engines times); the report gives both medians, the speed-up and the share of
sentences with the same best hypothesis in both (a fast path that changes numbers shows up there).
"""

from __future__ import annotations

# ruff: noqa: E402 (allocator.preload() comes before the other imports)
from translate import allocator

if __name__ == "__main__":
    allocator.preload()

import argparse
import contextlib
import statistics
import time

import torch
from decode_setup import add_decode_args, decode_setup

from translate.attention import cpu_decode
from translate.machine import describe_cpu
from translate.models import cpu_linear, decoding_step, encoder_inference, packed


def _swap(module, name: str, value):
    """A context that sets module.name = value and puts the original back."""

    @contextlib.contextmanager
    def swapped():
        old = getattr(module, name)
        setattr(module, name, value)
        try:
            yield
        finally:
            setattr(module, name, old)

    return swapped


def only_eos_where(scores: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """repetition.only_eos as a masked sum over every row (what it replaces)."""
    from translate.data.vocab import EOS_ID

    caught = torch.zeros(scores.size(0), dtype=torch.bool).index_fill_(0, rows, True)
    eos_only = torch.full((scores.size(-1),), float("-inf"))
    eos_only[EOS_ID] = 0.0
    return torch.where(caught.view(-1, *[1] * (scores.dim() - 1)), scores + eos_only, scores)


def variants() -> dict:
    """{name: a context manager factory that runs the code without that fast path}."""
    from translate.search import beam, repetition, sampling, topk

    def both_only_eos():
        stack = contextlib.ExitStack()
        stack.enter_context(_swap(beam, "only_eos", only_eos_where)())
        stack.enter_context(_swap(repetition, "only_eos", only_eos_where)())
        return stack

    return {
        "packed-output": _swap(packed, "applies", lambda *a: False),  # F.linear for the output projection
        "argmax": _swap(sampling, "argmax", topk.argmax_reference),  # greedy: torch's argmax
        "topk": _swap(beam, "candidates_topk", topk.candidates_topk_reference),
        "eos-rows": both_only_eos,
        "cpu-attention": _swap(cpu_decode, "applies", lambda *a: False),  # PyTorch's SDPA for decoding
        "layer-step": _swap(decoding_step, "applies", lambda *a: False),  # the decoder layer modules
        "encoder-kernel": _swap(encoder_inference, "packed", lambda *a: None),  # the encoder layer modules
        "cpu-linear": _swap(cpu_linear, "panel_set", lambda *a: None),  # F.linear (oneDNN for the output)
    }


def main(argv=None) -> int:
    known = variants()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_decode_args(p)
    p.add_argument("--runs", type=int, default=5, help="runs of each side, alternating")
    p.add_argument("--without", nargs="+", choices=sorted(known), required=True)
    args = p.parse_args(argv)
    engine, src, search = decode_setup(args)

    def run(without: bool):
        with contextlib.ExitStack() as stack:
            if without:
                for name in args.without:
                    stack.enter_context(known[name]())
            start = time.perf_counter()
            hyps = engine.translate_ids(src, search)
            return time.perf_counter() - start, [h[0].tokens for h in hyps]

    times = {True: [], False: []}
    outs = {}
    for i in range(args.runs):
        for without in (False, True) if i % 2 == 0 else (True, False):
            seconds, outs[without] = run(without)
            times[without].append(seconds)
    with_s, without_s = statistics.median(times[False]), statistics.median(times[True])
    same = sum(a == b for a, b in zip(outs[False], outs[True])) / len(src)
    print(f"{describe_cpu()}, torch {torch.__version__}, {args.threads} thread(s), {engine.describe()}")
    print(f"{len(src)} test verses, beam {args.beam}, repeat_guard {args.repeat_guard}, "
          f"{args.runs} runs each")
    print(f"without {' '.join(args.without)}: {len(src) / without_s:.2f} sent/s (median {without_s:.2f} s: "
          f"{' '.join(f'{t:.2f}' for t in times[True])})")  # fmt: skip
    print(f"with:    {len(src) / with_s:.2f} sent/s (median {with_s:.2f} s: "
          f"{' '.join(f'{t:.2f}' for t in times[False])})")  # fmt: skip
    print(f"speed-up {without_s / with_s:.3f}x; same best hypothesis {100 * same:.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
