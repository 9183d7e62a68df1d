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
A model name `<config>/<backend>` runs that config with model.attention_backend=<backend> (math, sdpa, ...);
`+fused` adds fused AdamW, `+compile` torch.compile of the model (the warm-up steps compile; their time is in
the JSON), `+torch_dropout` runs torch's own dropout instead of translate/models/dropout.py's, e.g.
`transformer/math+fused+compile`.
It first prints what this CPU can do (its flags, PyTorch's view, the bf16 probe and matmul benchmark that
`trainer.precision=auto` uses, and what auto resolves to), so every table says which machine it came from.

Allocators (`--allocators system,mimalloc,...`, default: what this process runs under) are measured side by
side: each measurement's subprocess gets that allocator's environment, and with `--rounds N` the order is
reversed every other round. Each row says which allocator the subprocess really ran on
(translate/allocator.py: describe), its minor page faults and system time per timed step, and its peak RSS.

Utilisation: the Transformer's FLOPs per target token, as the model counts them
(Transformer.flops_per_target_token), times tokens/s, against the matmul peak measured in this run at the
model's shapes (Transformer.linear_shapes) in each precision.

Writes JSON (--json) and prints markdown tables.
"""

import argparse
import contextlib
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

ROOT = Path(__file__).resolve().parents[1]

from translate import allocator  # noqa: E402

if __name__ == "__main__":
    allocator.preload()  # first: re-executes under mimalloc before torch is imported (translate/allocator.py)

import torch  # noqa: E402
from torch import nn  # noqa: E402

from translate.data.vocab import BOS_ID, PAD_ID  # noqa: E402
from translate.files import write_text  # noqa: E402
from translate.machine import ISA_LIMITS  # noqa: E402
from translate.models.dropout import Dropout  # noqa: E402
from translate.training.flops import matmul_peak  # noqa: E402
from translate.training.loss import label_smoothed_loss  # noqa: E402

REFERENCE = "nn_transformer"
OPTIONS = {"fused": "fused AdamW (torch.optim.AdamW(fused=True))", "compile": "torch.compile(model)",
           "torch_dropout": "torch's own dropout (nn.Dropout) in place of translate.models.dropout's"}
GOALS = {"bf16": 0.60, "fp32": 0.75}  # share of the measured matmul peak (issue 21)
NN_GOAL = 1.2  # ours / torch.nn.Transformer, same precision, same run
SYSTEM_LIBS = Path("/usr/lib") / f"{platform.machine()}-linux-gnu"
# name -> the environment its subprocess runs with (None: the library is missing here)
ALLOCATORS = {
    "default": {},
    "system": {"TRANSLATE_ALLOCATOR": "system"},
    "glibc-tuned": {"TRANSLATE_ALLOCATOR": "system",  # the largest mmap threshold glibc takes (32 MiB)
                    "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=33554432:"
                                      "glibc.malloc.trim_threshold=4294967296"},
    "mimalloc": {"TRANSLATE_ALLOCATOR": "mimalloc", "MIMALLOC_PURGE_DELAY": "-1"},
    "mimalloc-purge10ms": {"TRANSLATE_ALLOCATOR": "mimalloc", "MIMALLOC_PURGE_DELAY": "10"},  # its default
    "jemalloc": {"TRANSLATE_ALLOCATOR": "system", "LD_PRELOAD": str(SYSTEM_LIBS / "libjemalloc.so.2")},
    "jemalloc-nodecay": {"TRANSLATE_ALLOCATOR": "system", "LD_PRELOAD": str(SYSTEM_LIBS / "libjemalloc.so.2"),
                         "MALLOC_CONF": "dirty_decay_ms:-1,muzzy_decay_ms:-1"},
    "tcmalloc": {"TRANSLATE_ALLOCATOR": "system",
                 "LD_PRELOAD": str(SYSTEM_LIBS / "libtcmalloc_minimal.so.4")},
}  # fmt: skip


def allocator_env(name: str) -> dict[str, str] | None:
    """The environment for a subprocess on allocator `name`; None where its library is not installed."""
    extra = ALLOCATORS[name]
    if "LD_PRELOAD" in extra and not Path(extra["LD_PRELOAD"]).is_file():
        return None
    env = {k: v for k, v in os.environ.items() if k not in ("MIMALLOC_PURGE_DELAY", "GLIBC_TUNABLES")}
    return env | extra


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
    base, *options = name.split("+")  # "transformer/math+fused+compile"
    unknown = set(options) - set(OPTIONS)
    if unknown:
        choices = ", ".join(OPTIONS)
        raise SystemExit(f"{name}: unknown option {', '.join(sorted(unknown))} (choose from {choices})")
    model = build(base, args.vocab).to(device).train()
    if "torch_dropout" in options:  # the reference, to measure the cheaper mask against
        for module in model.modules():
            if isinstance(module, Dropout):
                module.__class__ = nn.Dropout
    fused = "fused" in options or None  # None: torch's default (foreach)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98), fused=fused)
    if "compile" in options:  # as trainer.compile=true does: the module, inductor's defaults
        model = torch.compile(model)
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

    start = time.perf_counter()
    for _ in range(args.warmup):
        step()
    compile_s = time.perf_counter() - start if "compile" in options else 0.0  # the warm-up compiles
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    before = resource.getrusage(resource.RUSAGE_SELF)
    times = []
    with profiled(args.profile) as prof:
        for _ in range(args.steps):
            start = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    after = resource.getrusage(resource.RUSAGE_SELF)
    if prof is not None:  # the ops by their own time, then by op and input shape
        order = "self_cpu_time_total"
        by_op = prof.key_averages().table(sort_by=order, row_limit=30)
        by_shape = prof.key_averages(group_by_input_shape=True).table(sort_by=order, row_limit=30)
        head = f"{name} {precision}, {allocator.describe()}, {args.steps} steps"
        write_text(args.profile, f"{head}\n\n{by_op}\nby input shape:\n{by_shape}\n")
    seconds = statistics.median(times)  # robust to other processes sharing the cores
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        "model": name,
        "precision": precision,
        "parameters": sum(p.numel() for p in model.parameters()),
        "warmup_s_with_compile": compile_s,
        "batch": batch,
        "tgt_tokens_per_step": batch * args.tgt_len,
        "seconds_per_step": seconds,
        "seconds_per_step_all": times,
        "tgt_tokens_per_s": batch * args.tgt_len / seconds,
        "peak_memory_mb": peak_mb,
        "memory_kind": "cuda max allocated" if device.type == "cuda" else "process peak RSS",
        "allocator": allocator.describe(),
        "minor_faults_per_step": (after.ru_minflt - before.ru_minflt) / args.steps,
        "system_s_per_step": (after.ru_stime - before.ru_stime) / args.steps,
        "user_s_per_step": (after.ru_utime - before.ru_utime) / args.steps,
    }


@contextlib.contextmanager
def profiled(path):
    """torch.profiler over the timed steps when --profile names a file; nothing otherwise."""
    if not path:
        yield None
        return
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        yield prof


def family(name: str) -> str:
    """'transformer/math+fused' -> 'transformer'."""
    return name.partition("+")[0].partition("/")[0]


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
        "| model | precision | allocator | params | batch (sent x tok) | s/step | target tok/s | GFLOP/s | "
        "share of peak | minor faults/step | system s/step | peak MB |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['precision']} | {r['alloc']} | | | | error: {r['error']} "
                         "| | | | | |")  # fmt: skip
            continue
        share = f"{r['share']:.0%}" if "share" in r else "-"
        gflops = f"{r['gflops']:.0f}" if "gflops" in r else "-"
        lines.append(
            f"| {r['model']} | {r['precision']} | {r['alloc']} | {r['parameters'] / 1e6:.2f}M | "
            f"{r['batch']} x "
            f"{r['tgt_tokens_per_step'] // r['batch']} | {r['seconds_per_step']:.3f} | "
            f"{r['tgt_tokens_per_s']:,.0f} | {gflops} | {share} | {r['minor_faults_per_step']:,.0f} | "
            f"{r['system_s_per_step']:.3f} | {r['peak_memory_mb']:,.0f} |"
        )
    return "\n".join(lines)


def peaks_table(peaks: dict, flops: float) -> str:
    lines = [f"FLOPs per target token (forward + backward, counted from conf/model/transformer.yaml): "
             f"{flops / 1e6:.1f} MFLOP", "", "| precision | matmul peak at the model's shapes (GFLOP/s) | "
             "each product m x k x n (GFLOP/s) |", "|---|---:|---|"]  # fmt: skip
    for prec, peak in peaks.items():
        each = ", ".join(f"{name}: {g:.0f}" for name, g in peak.products)
        lines.append(f"| {prec} | {peak.gflops:.0f} | {each} |")
    return "\n".join(lines)


def run_one(name: str, precision: str, alloc: str, settings: list, profile: Path | None) -> dict:
    env = allocator_env(alloc)
    if env is None:
        return {"model": name, "precision": precision, "alloc": alloc, "error": "library not installed here"}
    cmd = [sys.executable, __file__, *map(str, settings), "--one", f"{name}:{precision}"]
    if profile:
        cmd += ["--profile", str(profile / f"{name.replace('/', '-')}_{precision}_{alloc}.txt")]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        return {"model": name, "precision": precision, "alloc": alloc, "error": last}
    return json.loads(done.stdout.strip().splitlines()[-1]) | {"alloc": alloc}


def build_parser() -> argparse.ArgumentParser:
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
    p.add_argument("--allocators", default="default",
                   help=f"comma-separated, side by side: {', '.join(ALLOCATORS)} (default: this process's)")
    p.add_argument("--rounds", type=int, default=1,
                   help="repeat everything; odd rounds run the models and allocators in reverse order")
    p.add_argument("--profile", type=Path, help="a directory: torch.profiler tables of each measurement's "
                   "timed steps, <model>_<precision>_<allocator>.txt (slows what it profiles)")  # fmt: skip
    p.add_argument("--json", type=Path, default=Path("bench_train.json"))
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one model:precision, print JSON
    return p


def fused_optimizer(name: str) -> bool:
    return "fused" in name.split("+")[1:]


def against_reference(rows: list[dict]) -> tuple[dict[str, dict], dict[str, dict]]:
    """-> (per precision our fastest Transformer row (any allocator, any round), per precision its ratio over
    the fastest torch.nn.Transformer row on the same allocator with the same optimizer (`+fused` or not), and
    the same ratio within each round)."""
    ours: dict[str, dict] = {}
    for r in rows:
        if family(r["model"]) == "transformer" and "error" not in r:
            best = ours.get(r["precision"])
            if best is None or r["tgt_tokens_per_s"] > best["tgt_tokens_per_s"]:
                ours[r["precision"]] = r

    def reference_rows(best: dict) -> list[dict]:
        return [r for r in rows if family(r["model"]) == REFERENCE and "error" not in r
                and r["precision"] == best["precision"] and r["alloc"] == best["alloc"]
                and fused_optimizer(r["model"]) == fused_optimizer(best["model"])]  # fmt: skip

    comparison = {}
    for prec, best in ours.items():
        same = reference_rows(best)
        if not same:
            continue
        ref = max(same, key=rate)
        per_round = []
        for round_ in sorted({r["round"] for r in same}):
            mine = [r for r in rows if r["model"] == best["model"] and r["precision"] == prec
                    and r["alloc"] == best["alloc"] and r.get("round") == round_
                    and "error" not in r]  # fmt: skip
            theirs = [r for r in same if r["round"] == round_]
            if mine and theirs:
                per_round.append(rate(mine[0]) / rate(theirs[0]))
        comparison[prec] = {"ours": best["model"], "reference": ref["model"], "ratio": rate(best) / rate(ref),
                            "ratio_per_round": per_round}  # fmt: skip
    return ours, comparison


def main(argv=None) -> int:
    p = build_parser()
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
    allocs = args.allocators.split(",")
    unknown = [a for a in allocs if a not in ALLOCATORS]
    if unknown:
        p.error(f"--allocators: unknown {', '.join(unknown)} (choose from {', '.join(ALLOCATORS)})")
    print(f"allocator (this process): {allocator.describe()}", file=sys.stderr)
    models, precisions = args.models.split(","), args.precisions.split(",")
    counting = build("transformer", args.vocab)  # conf/model/transformer.yaml, as training builds it
    flops = counting.flops_per_target_token(args.src_len, args.tgt_len)  # the model counts its own FLOPs
    rows_per_step = max(args.batch_tokens // args.tgt_len, 1) * args.tgt_len
    shapes = counting.linear_shapes()
    # each product timed for at least 50 ms: a peak timed in a moment of contention reads low
    peaks = {prec: matmul_peak(shapes, prec, rows=rows_per_step, device=args.device, min_s=0.05)
             for prec in precisions}
    for prec, peak in peaks.items():
        print(f"matmul peak {prec}: {peak.describe()}", file=sys.stderr)
    rows = []
    settings = ["--batch-tokens", args.batch_tokens, "--src-len", args.src_len, "--tgt-len", args.tgt_len,
                "--vocab", args.vocab, "--steps", args.steps, "--warmup", args.warmup,
                "--device", args.device, "--threads", args.threads]  # fmt: skip
    for round_ in range(args.rounds):  # odd rounds run models and allocators in reverse order
        order = allocs if round_ % 2 == 0 else allocs[::-1]
        for name in models if round_ % 2 == 0 else models[::-1]:
            for precision in precisions:
                for alloc in order:
                    row = run_one(name, precision, alloc, settings, args.profile) | {"round": round_}
                    if "error" not in row and family(name) in ("transformer", REFERENCE):
                        row["gflops"] = row["tgt_tokens_per_s"] * flops / 1e9
                        row["share"] = row["gflops"] / peaks[precision].gflops
                    rows.append(row)
                    print(f"{name} {precision} {alloc}: {row.get('tgt_tokens_per_s', row.get('error'))}",
                          file=sys.stderr)  # fmt: skip
    ours, comparison = against_reference(rows)
    report = {
        "settings": {k: v for k, v in vars(args).items() if k not in ("one", "json")} | {
            "torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.processor()
            or platform.machine()},
        "cpu": cpu,
        "flops_per_target_token": flops,
        "matmul_peaks": {prec: {"gflops": pk.gflops, "rows": pk.rows, "products": dict(pk.products)}
                         for prec, pk in peaks.items()},  # fmt: skip
        "results": rows,
        "ours_over_nn_transformer": comparison,
    }  # fmt: skip
    write_text(args.json, json.dumps(report, indent=2, default=str) + "\n")
    print(f"CPU: {cpu['cpu']} ({' '.join(cpu['flags'])}); ATen {cpu['torch_cpu_capability']}; "
          f"precision auto -> {cpu['precision_auto']} ({cpu['precision_auto_reason']})")  # fmt: skip
    print(peaks_table(peaks, flops))
    print()
    print(table(rows))
    for prec, c in comparison.items():
        verdict = f"goal {NN_GOAL}x met" if c["ratio"] >= NN_GOAL else f"below the {NN_GOAL}x goal"
        rounds = " / ".join(f"{x:.2f}x" for x in c["ratio_per_round"])
        print(f"ours ({c['ours']}) / torch.nn.Transformer ({c['reference']}, {prec}): {c['ratio']:.2f}x "
              f"({verdict}; per round: {rounds})")  # fmt: skip
    for prec, best in ours.items():
        goal = GOALS.get(prec)
        if goal is not None and "share" in best:
            if best["share"] > 1.0:  # no step outruns its own matmuls: the peak was timed while disturbed
                verdict = "not judged: over 100% means the peak was timed while busy; rerun idle"
            else:
                verdict = "met" if best["share"] >= goal else "not met"
            print(f"ours ({best['model']}, {best['alloc']}) {prec}: {best['share']:.0%} of the matmul peak "
                  f"(goal {goal:.0%}: {verdict})")  # fmt: skip
    return 0 if all(math.isfinite(r.get("tgt_tokens_per_s", 0.0)) for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
