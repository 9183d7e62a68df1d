"""The CUDA path compiled for real GPUs, without one: every kernel at the tiles its launcher picks.

translate.attention.triton_compile runs each launcher on CPU tensors with the GPU path forced and compiles
what it would launch to a cubin for sm_80 and sm_90 (ptxas from the triton wheel). The CI set covers every
kernel and dtype at the shipped head and value dims; `scripts/compile_kernels.py` compiles every case. Run
in a subprocess: this test process runs Triton's interpreter, which cannot compile.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT

pytest.importorskip("triton")

from translate.attention.triton_compile import SHARED_LIMIT, SPILL_BUDGET, ci_cases, problems  # noqa: E402


def run_compiler(args: list[str], code: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    cmd = [sys.executable, *(["-c", code] if code else ["-m", "translate.attention.triton_compile"])]
    done = subprocess.run([*cmd, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def ci_report():
    return run_compiler(["--set", "ci"])


def test_every_kernel_compiles_for_sm80_and_sm90_within_shared_memory_without_spills(ci_report):
    rows = ci_report["rows"]
    assert [p for r in rows for p in problems(r)] == []
    assert {r["cc"] for r in rows} == {80, 90}
    kernels = {(r["family"], r["kernel"]) for r in rows}
    flash = {"_fwd_kernel", "_bwd_preprocess_kernel", "_bwd_dkdv_kernel", "_bwd_dq_kernel"}
    additive = {"_fwd_kernel", "_bwd_dwq_kernel", "_bwd_dkv_kernel"}
    assert kernels == {*(("flash", k) for k in flash), *(("additive", k) for k in additive),
                       ("paged", "_paged_decode_kernel")}  # fmt: skip
    assert {r["dtype"] for r in rows} == {"fp32", "fp16", "bf16"}
    assert {r["case"] for r in rows} == {c.name for c in ci_cases()}
    for r in rows:  # what the rows report is what a launch uses: tiles, warps, real resource counts
        assert r["tiles"] and r["num_warps"] in (1, 2, 4, 8, 16) and 0 < r["registers"] <= 255
        assert 0 < r["shared_bytes"] <= SHARED_LIMIT[r["cc"]]


def test_the_compiled_tiles_are_the_launchers_gpu_tiles(ci_report):
    """The flash forward at head dim 64, fp16: _blocks' GPU tiles, not the interpreter's 16 x 16."""
    import torch

    from translate.attention.triton_flash import _blocks

    expected = _blocks("fwd", 300, 300, 64, torch.float16, interpreted=False)
    row = next(r for r in ci_report["rows"] if r["case"].startswith("flash fwd fp16 D64 T300"))
    assert row["tiles"] == {"BLOCK_M": expected["BLOCK_M"], "BLOCK_N": expected["BLOCK_N"], "BLOCK_D": 64}
    assert (row["num_warps"], row["num_stages"]) == (expected["num_warps"], expected["num_stages"])
    assert expected["BLOCK_M"] > 16


def test_a_spilling_tile_and_a_compile_error_are_reported():
    """A tile too big for the registers spills (fp32 flash forward, head dim 128, 32 x 32 with 8 warps: 255
    registers and about 360 B on sm_90), and the check says so; a kernel that does not compile is a row
    with its error, not a crash."""
    code = textwrap.dedent("""
        import json, sys
        from translate.attention import triton_flash, triton_compile as tc
        triton_flash._GPU_TILES[("fwd", False, True)] = (32, 32, 8, 2)     # fp32, head dim 128: spills
        rows = tc.compile_case(tc.Case("flash", "fwd", "fp32", 128), 90)
        triton_flash._GPU_TILES[("fwd", False, False)] = (64, 24, 4, 1)    # 24 keys: not a power of 2
        rows += tc.compile_case(tc.Case("flash", "fwd", "fp32", 64), 80)
        json.dump({"rows": rows}, sys.stdout)
    """)
    big, odd = run_compiler([], code=code)["rows"]
    assert big["spill_bytes"] > SPILL_BUDGET and big["registers"] == 255
    assert len(problems(big)) == 1 and "sm_90" in problems(big)[0] and "B spilled" in problems(big)[0]
    assert "error" in odd and problems(odd)[0].endswith(odd["error"]) and "compile error" in problems(odd)[0]


def test_problems_names_each_limit():
    row = {"case": "c", "kernel": "k", "cc": 90, "tiles": {"BLOCK_M": 64}, "num_warps": 4, "registers": 255,
           "spill_bytes": SPILL_BUDGET + 8, "shared_bytes": SHARED_LIMIT[90] + 1}  # fmt: skip
    found = problems(row)
    assert len(found) == 2 and "shared memory, over sm_90's" in found[0]
    assert "B spilled (255 registers" in found[1]
    assert problems({**row, "spill_bytes": SPILL_BUDGET, "shared_bytes": 1024}) == []
