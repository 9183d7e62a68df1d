"""Benchmark the attention backends: forward and forward+backward time and peak memory vs sequence length.

    .venv/bin/python scripts/bench_attention.py                     # -> reports/bench_attention.{json,md}
    .venv/bin/python scripts/bench_attention.py --lengths 64-2048 --backends math,sdpa --window 128

Defaults: on the CPU math and sdpa, float32, lengths 64..1024; on CUDA math, sdpa, triton (ours),
sdpa-flash and fa2, float16, lengths 64..4096 and window rows (w = 256).

FlashAttention-2, twice: sdpa-flash is PyTorch's SDPA held to its FlashAttention-2 kernel
(torch.nn.attention.sdpa_kernel(SDPBackend.FLASH_ATTENTION); no window: rows "unsupported"), fa2 is
Dao-AILab's flash_attn.flash_attn_func where the flash-attn package is installed (rows "not installed"
otherwise; window_size gives its sliding window). Both need CUDA and 16-bit inputs.

Self-attention with T = S = length, batch/heads/head-dim as options; --causal (default) or --no-causal;
--window W adds sliding-window rows (default 256 on CUDA, none on CPU). A backend that runs out of memory
at some length is marked "oom" and skipped for longer ones; on the CPU a math run whose (B,H,T,S) score
tensors would not fit in half the free memory is skipped the same way.

Peak memory is what the call allocates on top of its inputs:
  CUDA: torch.cuda.max_memory_allocated() after reset_peak_memory_stats(), minus the memory before;
  CPU:  torch keeps no counter, so a TorchDispatchMode records every storage created by an aten op (forward
        and backward) and, after each op, drops the ones that died (StorageWeakRef); the peak of the live
        sum is reported. Scratch memory internal to one fused kernel (sdpa's per-thread blocks) is not seen.
Forward is timed under torch.no_grad() (inference); forward+backward with gradients for q, k and v.
Times are the best of several repeats after one warm-up (other load on a shared machine only adds
time). Writes JSON (--out) and a markdown table next to it.
"""

from __future__ import annotations

# ruff: noqa: E402 (allocator.preload() comes before the other imports)
from translate import allocator

if __name__ == "__main__":
    allocator.preload()  # first: re-executes under mimalloc before torch is imported (translate/allocator.py)

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from tqdm import tqdm

from translate.attention import resolve_backend, scaled_dot_product  # noqa: E402
from translate.files import write_text  # noqa: E402

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
MIB = 2**20


class LiveTensorBytes(TorchDispatchMode):
    """Peak bytes of the storages aten ops create while active: a CPU stand-in for max_memory_allocated."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.current = 0
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for key, (ref, nbytes) in list(self.live.items()):  # storages freed since the last op
            if ref.expired():
                del self.live[key]
                self.current -= nbytes
        existing = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0] if _is_tensor(t)}
        for tensor in tree_flatten(out)[0]:
            if not _is_tensor(tensor):
                continue
            storage = tensor.untyped_storage()
            key = storage.data_ptr()
            if key in existing or key in self.live or storage.nbytes() == 0:
                continue  # a view or in-place result of an input, or already counted
            self.live[key] = (StorageWeakRef(storage), storage.nbytes())
            self.current += storage.nbytes()
        self.peak = max(self.peak, self.current)
        return out


def _is_tensor(x) -> bool:
    return isinstance(x, torch.Tensor) and x.device.type != "meta"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_ms(fn, device: torch.device, min_time: float, max_reps: int) -> float:
    """One warm-up, then repeats until min_time seconds (3 at least unless one takes a second); the best.

    The minimum, not the mean: on a shared machine other processes only ever add time.
    """
    fn()
    _sync(device)
    times: list[float] = []
    while len(times) < max_reps and (sum(times) < min_time or (len(times) < 3 and sum(times) < 1.0)):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return 1000.0 * min(times)


def _peak_mib(fn, device: torch.device) -> float:
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        _sync(device)
        return (torch.cuda.max_memory_allocated(device) - before) / MIB
    with LiveTensorBytes() as tracker:
        fn()
    return tracker.peak / MIB


EXTERNAL = ("sdpa-flash", "fa2")  # FlashAttention-2 outside our attention core


def external_attention(backend: str, causal: bool, window: int | None, device: torch.device, dtype):
    """(q, k, v) (B,H,T,D) -> out for sdpa-flash or fa2, or the reason a cell cannot run ("unsupported",
    "not installed")."""
    if device.type != "cuda" or dtype == torch.float32:
        return "unsupported"
    if backend == "sdpa-flash":
        if window is not None:
            return "unsupported"
        from torch.nn.attention import SDPBackend, sdpa_kernel

        def sdpa_flash(q, k, v):
            with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
                return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)

        return sdpa_flash
    try:
        from flash_attn import flash_attn_func
    except ImportError:
        return "not installed"
    size = (-1, -1) if window is None else (window, 0 if causal else window)

    def fa2(q, k, v):  # flash_attn takes (B,T,H,D)
        out = flash_attn_func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), causal=causal,
                              window_size=size)  # fmt: skip
        return out.transpose(1, 2)

    return fa2


def measure(args, backend: str, length: int, window: int | None, device: torch.device) -> dict:
    """Time and memory of one (backend, mask, length) cell."""
    dtype = DTYPES[args.dtype]
    shape = (args.batch, args.heads, length, args.head_dim)  # (B,H,T,D), S = T
    if backend in EXTERNAL:
        attend = external_attention(backend, args.causal, window, device, dtype)
        if isinstance(attend, str):
            return dict(backend=backend, mask=_mask_name(args.causal, window), length=length, status=attend)
    q, k, v = (torch.randn(shape, device=device, dtype=dtype, requires_grad=True) for _ in range(3))
    grad_out = torch.randn(shape, device=device, dtype=dtype)
    call = dict(causal=args.causal, window=window, backend=backend)
    if backend not in EXTERNAL:
        def attend(q, k, v):
            return scaled_dot_product(q, k, v, **call)[0]

    def forward():
        with torch.no_grad():
            attend(q, k, v)

    def forward_backward():
        out = attend(q, k, v)
        torch.autograd.grad(out, (q, k, v), grad_out)

    resolved = backend if backend in EXTERNAL else resolve_backend(
        backend, device, head_dim=args.head_dim, value_dim=args.head_dim, dtype=dtype)  # fmt: skip
    return dict(
        backend=backend,
        resolved=resolved,
        mask=_mask_name(args.causal, window),
        length=length,
        fwd_ms=_best_ms(forward, device, args.min_time, args.max_reps),
        fwd_bwd_ms=_best_ms(forward_backward, device, args.min_time, args.max_reps),
        fwd_peak_mib=_peak_mib(forward, device),
        fwd_bwd_peak_mib=_peak_mib(forward_backward, device),
        status="ok",
    )


def _mask_name(causal: bool, window: int | None) -> str:
    name = "causal" if causal else "full"
    return name if window is None else f"{name}+window{window}"


def _too_big_for_cpu(args, backend: str, length: int) -> bool:
    """math (and sdpa's math fallback) keep about six (B,H,T,S) fp32 tensors through forward+backward."""
    if backend not in ("math", "sdpa"):
        return False
    need = 6 * args.batch * args.heads * length * length * 4
    free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return need > free / 2


def parse_lengths(text: str) -> list[int]:
    """'64-4096' (doubling) or '64,128,512'."""
    try:
        if "-" in text:
            low, high = (int(x) for x in text.split("-"))
            lengths = [low * 2**i for i in range(int(math.log2(high / low)) + 1)] if 0 < low <= high else []
        else:
            lengths = [int(x) for x in text.split(",")]
    except ValueError:
        lengths = []
    if not lengths or min(lengths) < 1:
        raise argparse.ArgumentTypeError(
            f"expected positive lengths like '64-4096' or '64,128,256', got {text!r}"
        )
    return lengths


def markdown(meta: dict, rows: list[dict]) -> str:
    lines = [
        f"Attention benchmark on {meta['device_name']}, {meta['dtype']} (batch {meta['batch']}, "
        f"heads {meta['heads']}, head dim {meta['head_dim']}, self-attention T = S = length); "
        f"peak memory = allocated on top of the inputs ({meta['memory_method']}).",
        "",
        "| length | backend | mask | fwd ms | fwd+bwd ms | fwd peak MiB | fwd+bwd peak MiB |",
        "|---:|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        name = (
            row["backend"]
            if row.get("resolved", row["backend"]) == row["backend"]
            else (f"{row['backend']} (ran {row['resolved']})")
        )
        if row["status"] != "ok":
            lines.append(f"| {row['length']} | {name} | {row['mask']} | {row['status']} | | | |")
            continue
        lines.append(
            f"| {row['length']} | {name} | {row['mask']} | {row['fwd_ms']:.2f} | {row['fwd_bwd_ms']:.2f} | "
            f"{row['fwd_peak_mib']:.1f} | {row['fwd_bwd_peak_mib']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default=None, help="default float16 on CUDA")
    parser.add_argument("--backends", default=None,
                        help="comma list; default math,sdpa (+triton,sdpa-flash,fa2 on CUDA)")  # fmt: skip
    parser.add_argument(
        "--lengths", type=parse_lengths, default=None, help="default 64-1024 CPU, 64-4096 CUDA"
    )
    parser.add_argument("--causal", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--window", type=int, default=None, help="add sliding-window rows (CUDA default 256)")
    parser.add_argument("--no-window", action="store_true", help="no sliding-window rows")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads (1 is steadier on a shared box)"
    )
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds of repeats per timing")
    parser.add_argument("--max-reps", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("reports/bench_attention.json"))
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    cuda = device.type == "cuda"
    args.dtype = args.dtype or ("float16" if cuda else "float32")
    backends = (args.backends or ("math,sdpa,triton,sdpa-flash,fa2" if cuda else "math,sdpa")).split(",")
    for name in backends:
        if name not in ("math", "sdpa", "triton", "auto", *EXTERNAL):
            parser.error(f"--backends: unknown backend {name!r} (math, sdpa, triton, auto, sdpa-flash, fa2)")
    lengths = args.lengths or parse_lengths("64-4096" if cuda else "64-1024")
    window = None if args.no_window else (args.window if args.window is not None else (256 if cuda else None))
    windows = [None] if window is None else [None, window]

    cells = [(b, w, n) for b in backends for w in windows for n in lengths]
    rows, failed = [], set()
    for backend, win, length in tqdm(cells, desc="bench attention", unit="cell"):
        if (backend, win) in failed or (not cuda and _too_big_for_cpu(args, backend, length)):
            failed.add((backend, win))
            rows.append(
                dict(backend=backend, mask=_mask_name(args.causal, win), length=length, status="skipped")
            )
            continue
        try:
            rows.append(measure(args, backend, length, win, device))
        except torch.OutOfMemoryError:
            failed.add((backend, win))
            rows.append(dict(backend=backend, mask=_mask_name(args.causal, win), length=length, status="oom"))
            if cuda:
                torch.cuda.empty_cache()
    rows.sort(key=lambda r: (r["mask"], r["length"], backends.index(r["backend"])))

    meta = dict(
        device=str(device),
        device_name=torch.cuda.get_device_name(device)
        if cuda
        else f"CPU, {torch.get_num_threads()} thread(s)",
        torch=torch.__version__,
        dtype=args.dtype,
        batch=args.batch,
        heads=args.heads,
        head_dim=args.head_dim,
        causal=args.causal,
        memory_method="torch.cuda.max_memory_allocated" if cuda else "live aten storages (TorchDispatchMode)",
        command="python "
        + " ".join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])]),
    )
    table = markdown(meta, rows)
    write_text(args.out, json.dumps(dict(meta=meta, rows=rows), indent=2) + "\n")
    write_text(args.out.with_suffix(".md"), table)
    print(table)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
