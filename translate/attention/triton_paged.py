"""Paged-attention decode kernel in Triton: one new query per row against its keys scattered over blocks.

Legend: B rows, H heads, D head dim (padded to BLOCK_D, a power of 2), N blocks in the pool, P block size
(padded to BLOCK_P), M blocks per row in the table.

One program per (row, head) walks the row's block table: it loads block j's P keys and values straight from
the pool (no gather, no contiguous copy), scores them against the query, and folds them into an online
softmax (running max m, running sum l, fp32 accumulator), as FlashAttention does over key blocks. Slots at
or beyond the row's length are masked; a row of length 0 returns zeros. With a single query the scores are
an elementwise product and a sum (no tl.dot), so fp32, fp16 and bf16 all accumulate in fp32, and the
interpreter runs every dtype exactly as a GPU would.

Limits (asserted by the launcher): one query per row (decoding), head dim up to 256, q and the pools in the
same dtype, integer tables and lengths. Not done: splitting a long row over several programs (split-K).
The reference, paged_attention_reference (gather + the attention core), sits in paged.py.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

LOG2E = 1.4426950408889634


@triton.jit
def _paged_decode_kernel(Q, K, V, O, TABLES, LENS,
                         sqb, sqh, sqd, skn, skp, skh, skd, svn, svp, svh, svd, sob, soh, sod, stb, stm,
                         P, D, qk_scale,
                         BLOCK_P: tl.constexpr, BLOCK_D: tl.constexpr):
    b = tl.program_id(0)
    h = tl.program_id(1)
    offs_p = tl.arange(0, BLOCK_P)
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < D
    length = tl.load(LENS + b)
    q = tl.load(Q + b.to(tl.int64) * sqb + h * sqh + offs_d * sqd, mask=d_ok, other=0.0).to(tl.float32)
    K += h.to(tl.int64) * skh
    V += h.to(tl.int64) * svh
    m_i = tl.max(tl.full([BLOCK_P], float("-inf"), tl.float32), 0)               # scalar running max
    l_i = tl.sum(tl.zeros([BLOCK_P], tl.float32), 0)                             # scalar running sum
    acc = tl.zeros([BLOCK_D], tl.float32)
    for j in range(0, tl.cdiv(length, P)):
        block = tl.load(TABLES + b.to(tl.int64) * stb + j * stm).to(tl.int64)
        ok = (offs_p < P) & (j * P + offs_p < length)                            # (BP,) real, filled slots
        tile = ok[:, None] & d_ok[None, :]
        k = tl.load(K + block * skn + offs_p[:, None] * skp + offs_d[None, :] * skd, mask=tile,
                    other=0.0).to(tl.float32)                                    # (BP, BD)
        s = tl.where(ok, tl.sum(k * q[None, :], 1) * qk_scale, float("-inf"))   # (BP,) scores, log2 units
        m_new = tl.maximum(m_i, tl.max(s, 0))
        p = tl.exp2(s - m_new)
        alpha = tl.exp2(m_i - m_new)
        v = tl.load(V + block * svn + offs_p[:, None] * svp + offs_d[None, :] * svd, mask=tile,
                    other=0.0).to(tl.float32)                                    # (BP, BD)
        l_i = l_i * alpha + tl.sum(p, 0)
        acc = acc * alpha + tl.sum(p[:, None] * v, 0)
        m_i = m_new
    out = acc / tl.where(l_i > 0.0, l_i, 1.0)                                    # zeros for an empty row
    tl.store(O + b.to(tl.int64) * sob + h * soh + offs_d * sod, out.to(O.dtype.element_ty), mask=d_ok)


def _check(q, k_pool, v_pool, tables, lengths):
    assert q.dim() == 4 and q.shape[2] == 1, (
        f"paged_decode_attention: q must be (B, H, 1, D), one query per row, got {tuple(q.shape)}")
    B, H, _, D = q.shape
    assert k_pool.dim() == 4 and k_pool.shape[2:] == (H, D) and v_pool.shape == k_pool.shape, (
        f"paged_decode_attention: pools must be (N, P, {H}, {D}), got {tuple(k_pool.shape)}, "
        f"{tuple(v_pool.shape)}")
    assert D <= 256, f"paged_decode_attention: head dim {D} above 256"
    assert q.dtype == k_pool.dtype == v_pool.dtype, (
        f"paged_decode_attention: dtypes differ: q {q.dtype}, pools {k_pool.dtype}, {v_pool.dtype}")
    assert tables.dim() == 2 and tables.shape[0] == B and not tables.is_floating_point(), (
        f"paged_decode_attention: tables must be integer (B, M) with B = {B}, got {tables.dtype} "
        f"{tuple(tables.shape)}")
    assert lengths.shape == (B,) and not lengths.is_floating_point(), (
        f"paged_decode_attention: lengths must be integer (B,) = ({B},), got {lengths.dtype} "
        f"{tuple(lengths.shape)}")
    assert q.device == k_pool.device == tables.device == lengths.device, (
        "paged_decode_attention: q, pools, tables and lengths must be on one device")


def paged_decode_attention(q: torch.Tensor, k_pool: torch.Tensor, v_pool: torch.Tensor, tables: torch.Tensor,
                           lengths: torch.Tensor, scale: float) -> torch.Tensor:  # fmt: skip
    """Launcher: q (B, H, 1, D), pools (N, P, H, D), tables (B, M), lengths (B,) -> out (B, H, 1, D).

    Row b attends to its first lengths[b] slots: slot s is pool[tables[b, s // P], s % P].
    Inference only (no autograd): decoding never differentiates through the cache.
    """
    _check(q, k_pool, v_pool, tables, lengths)
    B, H, _, D = q.shape
    P = k_pool.shape[1]
    out = torch.empty_like(q)
    tables = tables.contiguous()
    lengths = lengths.to(torch.int32).contiguous()
    if B == 0:
        return out
    grid = (B, H)
    block_p, block_d = max(16, triton.next_power_of_2(P)), max(16, triton.next_power_of_2(D))
    # The (BP, BD) key and value tiles live in registers: 8 warps from 8K values (64 x 128) up, where 4 warps
    # spill (fp32, head dim 256, blocks of 64: 16-64 B on sm_80/sm_90; see triton_compile.py).
    warps = 8 if block_p * block_d >= 8192 else 4
    _paged_decode_kernel[grid](
        q, k_pool, v_pool, out, tables, lengths,
        q.stride(0), q.stride(1), q.stride(3), *k_pool.stride(), *v_pool.stride(),
        out.stride(0), out.stride(1), out.stride(3), tables.stride(0), tables.stride(1),
        P, D, scale * LOG2E, BLOCK_P=block_p, BLOCK_D=block_d, num_warps=warps,
    )  # fmt: skip
    return out
