"""Training throughput: target tokens/s and peak memory per model config, fp32 and bf16 autocast.

    python scripts/bench_train.py         # transformer/{math,sdpa}, nn_transformer, rnnsearch, rnnencdec
    python scripts/bench_train.py --models transformer,transformer/math --precisions bf16 --steps 20

Every measurement runs in a fresh subprocess (so peak RSS is its own) at fixed settings: synthetic batches of
`--batch-tokens` target tokens (sentences of `--src-len` / `--tgt-len` subwords, no padding), an 8k joint
vocabulary, AdamW and the label-smoothed loss of the training loop, `--warmup` untimed steps first. One step =
forward + backward + clip + optimizer step, as in translate/training/step.py; the rate comes from the median
step time (robust to other processes on the same cores).

`nn_transformer` is the reference: torch.nn.Transformer with the same sizes as conf/model/transformer.yaml
(tied embeddings, sinusoidal positions, post-norm, relu), so our Transformer can be compared in the same run.
A model name `<config>/<backend>` runs that config with model.attention_backend=<backend> (math, sdpa, ...).
It first prints what this CPU can do (its flags, PyTorch's view, the bf16 probe and matmul benchmark that
`trainer.precision=auto` uses, and what auto resolves to), so every table says which machine it came from.
Writes JSON (--json) and prints a markdown table.
"""

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]

from translate.data.vocab import BOS_ID, PAD_ID  # noqa: E402
from translate.machine import ISA_LIMITS  # noqa: E402
from translate.training.loss import label_smoothed_loss  # noqa: E402

REFERENCE = "nn_transformer"


class TorchTransformer(nn.Module):
    """torch.nn.Transformer with our Transformer's embedding, positions, tying and output layer."""

    def __init__(self, vocab: int, d_model: int, num_heads: int, encoder_layers: int, decoder_layers: int,
                 ffn_dim: int, dropout: float):  # fmt: skip
        super().__init__()
        from translate.models.embedding import ScaledEmbedding, build_positions

        self.embedding = ScaledEmbedding(vocab, d_model)
        self.positions = build_positions("sinusoidal", d_model, 1024)
        self.dropout = nn.Dropout(dropout)
        self.transformer = nn.Transformer(
            d_model, num_heads, encoder_layers, decoder_layers, ffn_dim, dropout, batch_first=True
        )
        self.output = nn.Linear(d_model, vocab, bias=False)
        self.output.weight = self.embedding.weight

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """src (B,S), tgt_in (B,T) -> logits (B,T,V)."""
        src_pad, tgt_pad = src.eq(PAD_ID), tgt_in.eq(PAD_ID)
        x = self.dropout(self.embedding(src) + self.positions(src.size(1)))  # (B,S,E)
        y = self.dropout(self.embedding(tgt_in) + self.positions(tgt_in.size(1)))  # (B,T,E)
        causal = nn.Transformer.generate_square_subsequent_mask(tgt_in.size(1), device=src.device)  # (T,T)
        h = self.transformer(x, y, tgt_mask=causal, src_key_padding_mask=src_pad,
                             tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad,
                             tgt_is_causal=True)  # fmt: skip
        return self.output(h)  # (B,T,V)


def build(name: str, vocab: int) -> nn.Module:
    from hydra import compose, initialize_config_dir

    from translate.models.build import build_model
    from translate.training.config import register_with_hydra

    register_with_hydra()  # conf/train.yaml's schema
    config, _, backend = name.partition("/")  # "transformer/math": that config with attention_backend=math
    overrides = [f"model={'transformer' if name == REFERENCE else config}"]
    overrides += [f"model.attention_backend={backend}"] if backend else []
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides).model
    if name == REFERENCE:
        return TorchTransformer(vocab, cfg.d_model, cfg.num_heads, cfg.encoder_layers, cfg.decoder_layers,
                                cfg.ffn_dim, cfg.dropout)  # fmt: skip
    return build_model(cfg, vocab, vocab, True)


def measure(name: str, precision: str, args) -> dict:
    """One config in this process: tokens/s over args.steps timed steps, peak memory."""
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = build(name, args.vocab).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98))
    batch = max(args.batch_tokens // args.tgt_len, 1)
    src = torch.randint(4, args.vocab, (batch, args.src_len), device=device)  # (B,S)
    tgt_out = torch.randint(4, args.vocab, (batch, args.tgt_len), device=device)  # (B,T)
    tgt_in = torch.cat([torch.full((batch, 1), BOS_ID, device=device), tgt_out[:, :-1]], 1)  # (B,T)
    dtype = {"bf16": torch.bfloat16, "fp32": None}[precision]

    def step() -> float:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(src, tgt_in)  # (B,T,V)
        loss, _ = label_smoothed_loss(logits, tgt_out, 0.1)
        (loss / tgt_out.numel()).backward()  # no PAD in these targets
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss)

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)  # robust to other processes sharing the cores
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        "model": name,
        "precision": precision,
        "parameters": sum(p.numel() for p in model.parameters()),
        "batch": batch,
        "tgt_tokens_per_step": batch * args.tgt_len,
        "seconds_per_step": seconds,
        "seconds_per_step_all": times,
        "tgt_tokens_per_s": batch * args.tgt_len / seconds,
        "peak_memory_mb": peak_mb,
        "memory_kind": "cuda max allocated" if device.type == "cuda" else "process peak RSS",
    }


def rate(row: dict) -> float:
    return row["tgt_tokens_per_s"]


def capability() -> dict:
    """The CPU's bf16-relevant flags, PyTorch's view of them, and what trainer.precision=auto decides here."""
    from translate.machine import cpu_flags, cpu_name, usable_cores
    from translate.training.precision import bf16_speedup, probe_bf16, resolve_precision

    wanted = sorted(f for f in cpu_flags() if f.startswith(("avx512", "amx", "avx2", "fma", "avx_vnni")))
    probe = probe_bf16(torch.device("cpu"))
    shapes = [(8000, 256), (1024, 256), (256, 1024)]  # the CPU-sized Transformer's largest Linears
    ratio = bf16_speedup(shapes)
    auto, reason = resolve_precision("auto", torch.device("cpu"), nn.Linear(1, 1), speedup=lambda _: ratio)
    return {
        "cpu": cpu_name(),
        "cores": usable_cores(),
        "flags": wanted,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        "isa_limits": {k: v for k, v in os.environ.items() if k in ISA_LIMITS},
        "bf16_probe": {"native": probe.native, "detail": probe.detail},
        "bf16_matmul_speedup": ratio,
        "precision_auto": auto,
        "precision_auto_reason": reason,
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| model | precision | params | batch (sent x tok) | s/step | target tok/s | peak MB |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['precision']} | | | | error: {r['error']} | |")
            continue
        lines.append(
            f"| {r['model']} | {r['precision']} | {r['parameters'] / 1e6:.2f}M | {r['batch']} x "
            f"{r['tgt_tokens_per_step'] // r['batch']} | {r['seconds_per_step']:.3f} | "
            f"{r['tgt_tokens_per_s']:,.0f} | {r['peak_memory_mb']:,.0f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=f"transformer/math,transformer/sdpa,{REFERENCE},rnnsearch,rnnencdec",
                   help="conf/model names (<name>/<backend>); nn_transformer: reference")  # fmt: skip
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--batch-tokens", type=int, default=3000, help="target tokens per step")
    p.add_argument("--src-len", type=int, default=40)
    p.add_argument("--tgt-len", type=int, default=40)
    p.add_argument("--vocab", type=int, default=8000)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--json", type=Path, default=Path("bench_train.json"))
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one model:precision, print JSON
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.one:
        name, precision = args.one.split(":")
        print(json.dumps(measure(name, precision, args)))
        return 0

    cpu = capability()
    print(f"CPU: {cpu['cpu']}, {cpu['cores']} cores; flags: {' '.join(cpu['flags']) or '-'}", file=sys.stderr)
    print(f"PyTorch: ATen {cpu['torch_cpu_capability']}, oneDNN bf16 {cpu['onednn_bf16']}"
          f"{', limits ' + str(cpu['isa_limits']) if cpu['isa_limits'] else ''}; "
          f"precision auto -> {cpu['precision_auto']} ({cpu['precision_auto_reason']})",
          file=sys.stderr)  # fmt: skip
    rows = []
    settings = ["--batch-tokens", args.batch_tokens, "--src-len", args.src_len, "--tgt-len", args.tgt_len,
                "--vocab", args.vocab, "--steps", args.steps, "--warmup", args.warmup,
                "--device", args.device, "--threads", args.threads]  # fmt: skip
    for name in args.models.split(","):
        for precision in args.precisions.split(","):
            cmd = [sys.executable, __file__, *map(str, settings), "--one", f"{name}:{precision}"]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["failed"])[-1]
                rows.append({"model": name, "precision": precision, "error": last})
            else:
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(
                f"{name} {precision}: {rows[-1].get('tgt_tokens_per_s', rows[-1].get('error'))}",
                file=sys.stderr,
            )
    ours: dict[str, dict] = {}  # per precision: our fastest Transformer backend
    for r in rows:
        if r["model"].partition("/")[0] == "transformer" and "error" not in r:
            best = ours.get(r["precision"])
            if best is None or r["tgt_tokens_per_s"] > best["tgt_tokens_per_s"]:
                ours[r["precision"]] = r
    ref = {r["precision"]: r for r in rows if r["model"] == REFERENCE and "error" not in r}
    comparison = {
        prec: {"ours": ours[prec]["model"], "ratio": rate(ours[prec]) / rate(ref[prec])}
        for prec in ours
        if prec in ref
    }
    report = {
        "settings": {k: v for k, v in vars(args).items() if k not in ("one", "json")} | {
            "torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.processor()
            or platform.machine()},
        "cpu": cpu,
        "results": rows,
        "ours_over_nn_transformer": comparison,
    }  # fmt: skip
    args.json.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print(f"CPU: {cpu['cpu']} ({' '.join(cpu['flags'])}); ATen {cpu['torch_cpu_capability']}; "
          f"precision auto -> {cpu['precision_auto']} ({cpu['precision_auto_reason']})")  # fmt: skip
    print(table(rows))
    for prec, c in comparison.items():
        verdict = "goal 1.1x met" if c["ratio"] >= 1.1 else "below the 1.1x goal"
        print(f"ours ({c['ours']}) / torch.nn.Transformer ({prec}): {c['ratio']:.2f}x ({verdict})")
    return 0 if all(math.isfinite(r.get("tgt_tokens_per_s", 0.0)) for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
