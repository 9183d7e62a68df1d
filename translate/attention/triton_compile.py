"""Compile the Triton kernels for a GPU that is not here: each launcher's own tiles, to a cubin, on the CPU.

Legend as in triton_flash.py (B, H, T, S, D) and triton_additive.py (A, Dk).

A Case is one launcher call (flash forward or backward, additive forward or backward, paged decode) at one
shape, dtype and mask set. compile_case runs the real launcher on CPU tensors of those shapes with the
GPU path forced (its _interpreted() answers False, so _blocks gives the GPU tiles and _dot_dtype the
tensor-core dtypes) and the kernels swapped for recorders, so every kernel launch is caught with the exact
arguments, tiles, num_warps and num_stages the launcher chose. Each launch is then specialised by the
kernel's own JIT binder (pointer alignment, integers equal to 1 or divisible by 16, as a CUDA launch would
specialise them) and compiled by triton.compile for GPUTarget("cuda", cc, 32): TTIR, TTGIR, LLIR, PTX and
ptxas (shipped in the triton wheel) to a cubin. Registers and spills are read from the cubin with
cuobjdump -res-usage (also in the wheel): REG, and STACK, the local-memory frame, which in a Triton kernel
holds only spills; shared memory is Triton's metadata.shared (its dynamic allocation), checked against the
target's per-block opt-in limit.

Needs triton >= 3.3 (the JIT's binder API) and a process where TRITON_INTERPRET is off (the interpreter
replaces @triton.jit functions with Python ones); the tests run it as a subprocess:

    python -m translate.attention.triton_compile --set ci      # the CI subset, JSON on stdout
    python scripts/compile_kernels.py                            # every case, JSON + a Markdown table
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

# Per-block shared memory a kernel may opt into (cudaDevAttrMaxSharedMemoryPerBlockOptin), bytes.
SHARED_LIMIT = {80: 163 * 1024, 90: 227 * 1024}
# Spill budget at the launchers' tiles, bytes: none. A spill is local memory traffic in the innermost loop.
SPILL_BUDGET = 0
# Spills accepted where every other tile tried spills more, (family, kernel, dtype, dim, cc) -> bytes: the
# fp32 additive backward at Dk 256 on sm_80 keeps 8 B in d wq; 64-wide Dk chunks remove them there but spill
# 8-16 B in d uk / d values, and 4 warps spill as much (no shipped config has Dk 256: RNNsearch's is 512).
ACCEPTED_SPILLS = {("additive", "_bwd_dwq_kernel", "fp32", 256, 80): 8}

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclasses.dataclass(frozen=True)
class Case:
    """One launcher call: kernel family and direction, dtype, sizes, masks."""

    family: str                  # "flash", "additive", "paged"
    direction: str               # "fwd" or "bwd" ("fwd" only for paged)
    dtype: str                   # "fp32", "fp16", "bf16"
    dim: int                     # head dim D (flash, paged) or value dim Dk (additive)
    T: int = 300                 # queries (1: a decoding step)
    S: int = 300                 # keys
    masks: tuple[str, ...] = ()  # flash: "klen", "causal", "window"; additive: "klen"
    A: int = 256                 # additive: attention dim
    block: int = 16              # paged: block size P

    @property
    def name(self) -> str:
        sizes = f"T{self.T} S{self.S}" if self.family != "paged" else f"P{self.block}"
        dim = "Dk" if self.family == "additive" else "D"
        masks = "+".join(self.masks) or "no masks"
        return f"{self.family} {self.direction} {self.dtype} {dim}{self.dim} {sizes} {masks}"


def flash_cases(dims=(64, 128, 16), dtypes=tuple(DTYPES)) -> list[Case]:
    """Head dims: 64 (conf/model/transformer*.yaml), 16 (the smoke experiment), 128 (the launcher's limit);
    forward and backward at training lengths with each mask set the models use, forward at one decoding
    step against a cache."""
    mask_sets = [(), ("klen",), ("klen", "causal"), ("klen", "causal", "window")]
    cases = []
    for d in dims:
        for dt in dtypes:
            for masks in mask_sets:
                cases += [Case("flash", "fwd", dt, d, masks=masks), Case("flash", "bwd", dt, d, masks=masks)]
            cases.append(Case("flash", "fwd", dt, d, T=1, masks=("klen",)))
    return cases


def additive_cases(dims=(512, 128, 256, 1024), dtypes=tuple(DTYPES)) -> list[Case]:
    """Value dims: 512 (conf/model/rnnsearch.yaml, 2 x 256 bidirectional), 128, 256, 1024 (the launcher's
    limit); training (T >= 16: tl.dot tiles) and one decoding step (T = 1), with and without key padding."""
    cases = []
    for dk in dims:
        for dt in dtypes:
            for masks in ((), ("klen",)):
                cases += [Case("additive", "fwd", dt, dk, T=50, S=60, masks=masks),
                          Case("additive", "bwd", dt, dk, T=50, S=60, masks=masks),
                          Case("additive", "fwd", dt, dk, T=1, S=60, masks=masks)]  # fmt: skip
    return cases


def paged_cases(dims=(64, 256), blocks=(16, 64), dtypes=tuple(DTYPES)) -> list[Case]:
    """Head dim 64 (the shipped Transformers) and 256 (the kernel's limit); block size 16 (ServeConfig's
    default) and 64."""
    return [Case("paged", "fwd", dt, d, T=1, S=300, block=p) for d in dims for p in blocks for dt in dtypes]


def all_cases() -> list[Case]:
    return flash_cases() + additive_cases() + paged_cases()


def ci_cases() -> list[Case]:
    """A representative set that compiles in well under a minute: each kernel once, every dtype, the
    shipped head and value dims, the mask sets that change the code most."""
    return [
        Case("flash", "fwd", "fp16", 64, masks=("klen", "causal", "window")),
        Case("flash", "fwd", "fp32", 64, masks=("klen",)),
        Case("flash", "fwd", "bf16", 64, T=1, masks=("klen",)),
        Case("flash", "bwd", "bf16", 64, masks=("klen", "causal")),
        Case("additive", "fwd", "fp32", 512, T=50, S=60, masks=("klen",)),
        Case("additive", "fwd", "fp16", 512, T=1, S=60, masks=("klen",)),
        Case("additive", "bwd", "bf16", 512, T=50, S=60),
        Case("paged", "fwd", "fp16", 64, T=1, S=300, block=16),
    ]


SETS = {"ci": ci_cases, "all": all_cases, "flash": flash_cases, "additive": additive_cases,
        "paged": paged_cases}


# ----------------------------------------------------------------------------------------------------
# Catching the launches


class _Recorder:
    """Stands in for a @triton.jit kernel: kernel[grid](*args, **kwargs) records the launch."""

    def __init__(self, fn, launches: list):
        self.fn, self.launches = fn, launches

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            self.launches.append((self.fn, grid, args, kwargs))

        return launch


@contextlib.contextmanager
def _gpu_launchers(launches: list):
    """The launchers take the GPU path on CPU tensors, and their kernels record instead of running."""
    from translate.attention import triton_additive, triton_flash, triton_paged

    patches = {
        (triton_flash, "_interpreted"): lambda t: False,
        (triton_flash, "_interpreter_on"): lambda: True,  # the launchers' "CUDA or interpreter" assert
        (triton_additive, "_interpreted"): lambda t: False,
        (triton_additive, "_interpreter_on"): lambda: True,
    }
    for module in (triton_flash, triton_additive, triton_paged):
        for name in dir(module):
            if name.endswith("_kernel") and hasattr(getattr(module, name), "run"):
                patches[(module, name)] = _Recorder(getattr(module, name), launches)
    saved = {key: getattr(*key) for key in patches}
    try:
        for (module, name), value in patches.items():
            setattr(module, name, value)
        yield
    finally:
        for (module, name), value in saved.items():
            setattr(module, name, value)


def launches_for(case: Case) -> list:
    """Run case's launcher on CPU tensors with the GPU path forced -> [(jit fn, grid, args, kwargs)]."""
    from translate.attention import triton_additive, triton_flash, triton_paged

    dt, launches = DTYPES[case.dtype], []
    B, H = 2, 4
    empty = lambda *shape, dtype=dt: torch.empty(*shape, dtype=dtype)  # noqa: E731
    with _gpu_launchers(launches):
        if case.family == "flash":
            q, k, v = empty(B, H, case.T, case.dim), *(empty(B, H, case.S, case.dim) for _ in "kv")
            klen = torch.full((B,), case.S, dtype=torch.long) if "klen" in case.masks else None
            causal, window = "causal" in case.masks, (32 if "window" in case.masks else None)
            scale = case.dim**-0.5
            if case.direction == "fwd":
                triton_flash.flash_forward(q, k, v, klen, causal, window, scale)
            else:
                o, lse = empty(B, H, case.T, case.dim), empty(B, H, case.T, dtype=torch.float32)
                triton_flash.flash_backward(empty(B, H, case.T, case.dim), q, k, v, o, lse, klen, causal,
                                            window, scale)  # fmt: skip
        elif case.family == "additive":
            wq, uk, vw = empty(B, case.T, case.A), empty(B, case.S, case.A), empty(case.A)
            values = empty(B, case.S, case.dim)
            klen = torch.full((B,), case.S, dtype=torch.long) if "klen" in case.masks else None
            if case.direction == "fwd":
                triton_additive.additive_forward(wq, uk, vw, values, klen)
            else:
                ctx, lse = empty(B, case.T, case.dim), empty(B, case.T, dtype=torch.float32)
                triton_additive.additive_backward(empty(B, case.T, case.dim), wq, uk, vw, values, ctx, lse,
                                                  klen)  # fmt: skip
        else:
            blocks = -(-case.S // case.block)
            pool = empty(B * blocks, case.block, H, case.dim)
            tables = torch.arange(B * blocks, dtype=torch.long).view(B, blocks)
            lengths = torch.full((B,), case.S, dtype=torch.int32)
            triton_paged.paged_decode_attention(empty(B, H, 1, case.dim), pool, pool.clone(), tables, lengths,
                                                case.dim**-0.5)  # fmt: skip
    return launches


# ----------------------------------------------------------------------------------------------------
# Compiling one launch


def _tool(name: str) -> str:
    import triton

    return str(Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / name)


def resource_usage(cubin: bytes) -> dict:
    """{"registers", "spill_bytes"} of the one function in a cubin, from cuobjdump -res-usage."""
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        out = subprocess.run([_tool("cuobjdump"), "-res-usage", f.name], capture_output=True, text=True,
                             check=True).stdout  # fmt: skip
    m = re.search(r"REG:(\d+) STACK:(\d+)", out)
    if m is None:
        raise RuntimeError(f"cuobjdump -res-usage: no REG/STACK line in {out!r}")
    return {"registers": int(m.group(1)), "spill_bytes": int(m.group(2))}


def compile_launch(fn, args, kwargs, cc: int):
    """One recorded launch -> the CompiledKernel for sm_<cc>, specialised as the JIT would specialise it."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, make_backend
    from triton.runtime.jit import create_function_from_signature

    target = GPUTarget("cuda", cc, 32)
    backend = make_backend(target)
    binder = create_function_from_signature(fn.signature, fn.params, backend)
    bound, specialization, options = binder(*args, **kwargs, debug=False)
    options, signature, constexprs, attrs = fn._pack_args(backend, kwargs, bound, specialization, options)
    source = ASTSource(fn, signature, constexprs, attrs)
    return triton.compile(source, target=target, options=options.__dict__)


def compile_case(case: Case, cc: int) -> list[dict]:
    """Every kernel launch of case compiled for sm_<cc> -> one row each (tiles, registers, spills, shared)."""
    rows = []
    for fn, grid, args, kwargs in launches_for(case):
        t0 = time.perf_counter()
        row = {"case": case.name, **dataclasses.asdict(case), "cc": cc, "kernel": fn.__name__,
               "tiles": {k: v for k, v in kwargs.items() if k.startswith("BLOCK_")}, "grid": list(grid),
               "num_warps": kwargs.get("num_warps", 4),  # triton's defaults where the launcher sets none
               "num_stages": kwargs.get("num_stages", 3)}  # fmt: skip
        try:
            kernel = compile_launch(fn, args, kwargs, cc)
        except Exception as e:  # a compile error is a result: the row says which and why
            row.update(error=" ".join(str(e).split())[:500], seconds=time.perf_counter() - t0)
            rows.append(row)
            continue
        row.update(resource_usage(kernel.asm["cubin"]), shared_bytes=int(kernel.metadata.shared),
                   seconds=time.perf_counter() - t0)  # fmt: skip
        rows.append(row)
    return rows


def problems(row: dict) -> list[str]:
    """What is wrong with one compiled kernel: a compile error, shared memory over the limit, spills."""
    where = f"{row['case']} {row['kernel']} sm_{row['cc']}"
    if "error" in row:
        return [f"{where}: compile error: {row['error']}"]
    found = []
    if row["shared_bytes"] > SHARED_LIMIT[row["cc"]]:
        found.append(f"{where}: {row['shared_bytes']} B shared memory, over sm_{row['cc']}'s "
                     f"{SHARED_LIMIT[row['cc']]} B")  # fmt: skip
    key = (row.get("family"), row["kernel"], row.get("dtype"), row.get("dim"), row["cc"])
    budget = ACCEPTED_SPILLS.get(key, SPILL_BUDGET)
    if row["spill_bytes"] > budget:
        found.append(f"{where}: {row['spill_bytes']} B spilled ({row['registers']} registers; budget "
                     f"{budget} B) at tiles {row['tiles']}, {row['num_warps']} warps")  # fmt: skip
    return found


def compile_all(cases: list[Case], targets=(80, 90), progress: bool = False) -> list[dict]:
    rows = []
    for case in cases:
        for cc in targets:
            for r in compile_case(case, cc):
                rows.append(r)
                if progress:
                    print(f"{case.name} {r['kernel']} sm_{cc}: " + (f"error {r['error'][:80]}" if "error" in r
                          else f"{r['registers']} regs, {r['spill_bytes']} B spilled, {r['shared_bytes']} B "
                          f"shared, {r['seconds']:.1f} s"), file=sys.stderr, flush=True)  # fmt: skip
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--set", choices=sorted(SETS), default="ci", help="which cases (default: ci)")
    p.add_argument("--targets", type=int, nargs="+", default=[80, 90], choices=sorted(SHARED_LIMIT))
    p.add_argument("--progress", action="store_true", help="one line per case on stderr")
    args = p.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes"):
        p.error("TRITON_INTERPRET is set: the interpreter cannot compile for a GPU (unset it)")
    rows = compile_all(SETS[args.set](), tuple(args.targets), progress=args.progress)
    json.dump({"rows": rows, "spill_budget": SPILL_BUDGET, "shared_limit": SHARED_LIMIT,
               "accepted_spills": [[*k, v] for k, v in ACCEPTED_SPILLS.items()]}, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
