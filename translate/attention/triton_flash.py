"""FlashAttention-style fused scaled dot-product attention in Triton, forward and backward.

Legend: B batch, H heads, T queries, S keys, D head dim (padded to BLOCK_D, a power of 2, with masks).

Why: the (B, H, T, S) score matrix never exists. Each program owns a block of queries, walks the key
blocks it may see with an online softmax (running max m, running sum l, fp32 accumulator), and keeps
only the log-sum-exp per query for the backward pass (FlashAttention-2, Dao 2023). The backward
recomputes probabilities from the log-sum-exp: a preprocess kernel computes delta = rowsum(dO * O), one
kernel per key block accumulates dK and dV, one kernel per query block accumulates dQ (no atomics).

Masks, all applied inside the kernels, one query row i at absolute position p = i + S - T:
  key padding  keys j >= key_lengths[b] are ignored;
  causal       j <= p (bottom-right aligned, so T=1 against a cache of S keys sees all S);
  window w     p - w <= j <= p + w (with causal on top: p - w <= j <= p); the loop bounds of every
               program are the key (or query) blocks that intersect its band, so cost is O(T * w).
A row that sees no key returns zeros and gets zero gradients (its log-sum-exp is stored as 0 and every
probability is exp2(-inf) = 0).

Dtypes: fp32, fp16, bf16 inputs, fp32 accumulation and softmax statistics; outputs in the input dtype.
Every tl.dot casts its tiles to DOT_DTYPE, chosen by the launcher: the input dtype on a GPU (tensor
cores; fp32 dots use TF32 only when torch.backends.cuda.matmul.allow_tf32 is set, IEEE otherwise), and
fp32 for bf16 inputs under the Triton interpreter, whose tl.dot on two bf16 tiles returns garbage
(triton 3.9.0; fp16/fp32 dots, bf16 loads/stores and casts are right). So CPU tests of bf16 inputs
check bf16 loads, stores, casts and fp32 accumulation; the bf16 tensor-core dot itself runs only on a GPU.

Limits (asserted by the launcher): head dim 16..128, v's dim equal to q's, no dropout, no arbitrary boolean
mask (padding is per-sequence key lengths), no weights returned. Not done: a split-K decoding kernel
(T = 1 runs one program per (b, h) over all keys) and separate unmasked loops for interior blocks.
"""

from __future__ import annotations

import math
import os

import torch
import triton
import triton.language as tl

LOG2E = 1.4426950408889634


@triton.jit
def _key_bounds(m_start, T, S, klen, window, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                CAUSAL: tl.constexpr, WINDOWED: tl.constexpr):
    """[lo, hi) key range a query block [m_start, m_start + BLOCK_M) can see; lo is block aligned."""
    shift = S - T
    first = m_start + shift                                   # position of the first query row
    last = tl.minimum(m_start + BLOCK_M, T) - 1 + shift       # position of the last real query row
    lo = 0 * klen
    hi = klen
    if CAUSAL:
        hi = tl.minimum(hi, last + 1)
    if WINDOWED:
        lo = tl.maximum(first - window, 0)
        hi = tl.minimum(hi, last + window + 1)
    return (lo // BLOCK_N) * BLOCK_N, hi


@triton.jit
def _query_bounds(n_start, T, S, klen, window, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                  CAUSAL: tl.constexpr, WINDOWED: tl.constexpr):
    """[lo, hi) query range that can see some key of [n_start, n_start + BLOCK_N); lo is block aligned."""
    shift = S - T
    last = tl.minimum(n_start + BLOCK_N, klen) - 1            # last real key of this block
    lo = 0 * klen
    hi = tl.where(n_start < klen, T, 0)                       # a block of padding keys sees nobody
    if CAUSAL:
        lo = tl.maximum(n_start - shift, 0)
    if WINDOWED:
        lo = tl.maximum(lo, n_start - window - shift)
        hi = tl.minimum(hi, last + window - shift + 1)
    return (lo // BLOCK_M) * BLOCK_M, hi


@triton.jit
def _visible(rows, cols, T, S, klen, window, CAUSAL: tl.constexpr, WINDOWED: tl.constexpr):
    """Bool tile: query rows[.] may attend to key cols[.]; rows and cols are index tiles that broadcast,
    (BM, 1) and (1, BN) for a score tile, (1, BM) and (BN, 1) for its transpose (no tl.trans needed)."""
    pos = rows + (S - T)
    ok = (rows < T) & (cols < klen)
    if CAUSAL:
        ok = ok & (cols <= pos)
    if WINDOWED:
        ok = ok & (cols >= pos - window) & (cols <= pos + window)
    return ok


@triton.jit
def _load_klen(KLEN, b, S, HAS_KLEN: tl.constexpr):
    """Number of real keys of sequence b, clamped to [0, S]; S when no lengths are given."""
    klen = S + 0 * b
    if HAS_KLEN:
        klen = tl.minimum(tl.maximum(tl.load(KLEN + b), 0), S)
    return klen


@triton.jit
def _fwd_kernel(Q, K, V, O, LSE, KLEN,
                sqb, sqh, sqt, sqd, skb, skh, sks, skd, svb, svh, svs, svd, sob, soh, sot, sod,
                H, T, S, D, qk_scale, window,
                HAS_KLEN: tl.constexpr, CAUSAL: tl.constexpr, WINDOWED: tl.constexpr,
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
                DOT_DTYPE: tl.constexpr, PRECISION: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n0 = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < D
    Q += b.to(tl.int64) * sqb + h.to(tl.int64) * sqh
    K += b.to(tl.int64) * skb + h.to(tl.int64) * skh
    V += b.to(tl.int64) * svb + h.to(tl.int64) * svh
    klen = _load_klen(KLEN, b, S, HAS_KLEN)

    q = tl.load(Q + offs_m[:, None] * sqt + offs_d[None, :] * sqd,
                mask=(offs_m < T)[:, None] & d_ok[None, :], other=0.0)           # (BM, BD)
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    lo, hi = _key_bounds(pid_m * BLOCK_M, T, S, klen, window, BLOCK_M, BLOCK_N, CAUSAL, WINDOWED)
    for start_n in range(lo, hi, BLOCK_N):
        offs_n = start_n + offs_n0
        n_ok = offs_n < klen
        kt = tl.load(K + offs_n[None, :] * sks + offs_d[:, None] * skd,
                     mask=n_ok[None, :] & d_ok[:, None], other=0.0)              # (BD, BN)
        v = tl.load(V + offs_n[:, None] * svs + offs_d[None, :] * svd,
                    mask=n_ok[:, None] & d_ok[None, :], other=0.0)               # (BN, BD)
        s = tl.dot(q.to(DOT_DTYPE), kt.to(DOT_DTYPE), input_precision=PRECISION) * qk_scale  # (BM, BN), log2
        s = tl.where(_visible(offs_m[:, None], offs_n[None, :], T, S, klen, window, CAUSAL, WINDOWED), s,
                     float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)                    # all-masked so far
        p = tl.exp2(s - m_safe[:, None])
        alpha = tl.exp2(m_i - m_safe)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(DOT_DTYPE), v.to(DOT_DTYPE), input_precision=PRECISION)
        m_i = m_new

    seen = l_i > 0.0
    out = acc / tl.where(seen, l_i, 1.0)[:, None]                                 # zeros for empty rows
    lse = tl.where(seen, m_i + tl.log2(tl.where(seen, l_i, 1.0)), 0.0)
    O += b.to(tl.int64) * sob + h.to(tl.int64) * soh
    tl.store(O + offs_m[:, None] * sot + offs_d[None, :] * sod, out.to(O.dtype.element_ty),
             mask=(offs_m < T)[:, None] & d_ok[None, :])
    tl.store(LSE + pid_bh.to(tl.int64) * T + offs_m, lse, mask=offs_m < T)


@triton.jit
def _bwd_preprocess_kernel(O, DO, DELTA, sob, soh, sot, sod, sdb, sdh, sdt, sdd, H, T, D,
                           BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr):
    """delta[b, h, i] = sum_d dO * O (fp32): the softmax-backward row term."""
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    ok = (offs_m < T)[:, None] & (offs_d < D)[None, :]
    o = tl.load(O + b.to(tl.int64) * sob + h.to(tl.int64) * soh + offs_m[:, None] * sot
                + offs_d[None, :] * sod, mask=ok, other=0.0).to(tl.float32)
    do = tl.load(DO + b.to(tl.int64) * sdb + h.to(tl.int64) * sdh + offs_m[:, None] * sdt
                 + offs_d[None, :] * sdd, mask=ok, other=0.0).to(tl.float32)
    tl.store(DELTA + pid_bh.to(tl.int64) * T + offs_m, tl.sum(o * do, 1), mask=offs_m < T)


@triton.jit
def _bwd_dkdv_kernel(Q, K, V, DO, LSE, DELTA, DK, DV, KLEN,
                     sqb, sqh, sqt, sqd, skb, skh, sks, skd, svb, svh, svs, svd, sdb, sdh, sdt, sdd,
                     H, T, S, D, qk_scale, scale, window,
                     HAS_KLEN: tl.constexpr, CAUSAL: tl.constexpr, WINDOWED: tl.constexpr,
                     BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
                     DOT_DTYPE: tl.constexpr, PRECISION: tl.constexpr):
    """One program per key block: dV = P^T dO, dK = scale * dS^T Q, over the query blocks that see it."""
    pid_n = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_m0 = tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < D
    Q += b.to(tl.int64) * sqb + h.to(tl.int64) * sqh
    K += b.to(tl.int64) * skb + h.to(tl.int64) * skh
    V += b.to(tl.int64) * svb + h.to(tl.int64) * svh
    DO += b.to(tl.int64) * sdb + h.to(tl.int64) * sdh
    LSE += pid_bh.to(tl.int64) * T
    DELTA += pid_bh.to(tl.int64) * T
    klen = _load_klen(KLEN, b, S, HAS_KLEN)
    kv_ok = (offs_n < klen)[:, None] & d_ok[None, :]
    k = tl.load(K + offs_n[:, None] * sks + offs_d[None, :] * skd, mask=kv_ok, other=0.0)   # (BN, BD)
    v = tl.load(V + offs_n[:, None] * svs + offs_d[None, :] * svd, mask=kv_ok, other=0.0)   # (BN, BD)
    dk = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    lo, hi = _query_bounds(pid_n * BLOCK_N, T, S, klen, window, BLOCK_M, BLOCK_N, CAUSAL, WINDOWED)
    for start_m in range(lo, hi, BLOCK_M):
        offs_m = start_m + offs_m0
        m_ok = offs_m < T
        q = tl.load(Q + offs_m[:, None] * sqt + offs_d[None, :] * sqd,
                    mask=m_ok[:, None] & d_ok[None, :], other=0.0)                # (BM, BD)
        do = tl.load(DO + offs_m[:, None] * sdt + offs_d[None, :] * sdd,
                     mask=m_ok[:, None] & d_ok[None, :], other=0.0)               # (BM, BD)
        lse = tl.load(LSE + offs_m, mask=m_ok, other=0.0)
        delta = tl.load(DELTA + offs_m, mask=m_ok, other=0.0)
        st = tl.dot(k.to(DOT_DTYPE), tl.trans(q).to(DOT_DTYPE), input_precision=PRECISION)
        st = st * qk_scale                                                         # S^T (BN, BM), log2
        vis = _visible(offs_m[None, :], offs_n[:, None], T, S, klen, window, CAUSAL, WINDOWED)  # (BN, BM)
        pt = tl.where(vis, tl.exp2(st - lse[None, :]), 0.0)                       # P^T (BN, BM)
        dv += tl.dot(pt.to(DOT_DTYPE), do.to(DOT_DTYPE), input_precision=PRECISION)
        dpt = tl.dot(v.to(DOT_DTYPE), tl.trans(do).to(DOT_DTYPE), input_precision=PRECISION)  # (BN, BM)
        dst = pt * (dpt - delta[None, :])
        dk += tl.dot(dst.to(DOT_DTYPE), q.to(DOT_DTYPE), input_precision=PRECISION)
    out_ok = (offs_n < S)[:, None] & d_ok[None, :]
    # DK/DV are freshly allocated contiguous (B, H, S, D): row index pid_bh * S + n.
    rows = pid_bh.to(tl.int64) * S + offs_n
    tl.store(DK + rows[:, None] * D + offs_d[None, :], (dk * scale).to(DK.dtype.element_ty), mask=out_ok)
    tl.store(DV + rows[:, None] * D + offs_d[None, :], dv.to(DV.dtype.element_ty), mask=out_ok)


@triton.jit
def _bwd_dq_kernel(Q, K, V, DO, LSE, DELTA, DQ, KLEN,
                   sqb, sqh, sqt, sqd, skb, skh, sks, skd, svb, svh, svs, svd, sdb, sdh, sdt, sdd,
                   H, T, S, D, qk_scale, scale, window,
                   HAS_KLEN: tl.constexpr, CAUSAL: tl.constexpr, WINDOWED: tl.constexpr,
                   BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
                   DOT_DTYPE: tl.constexpr, PRECISION: tl.constexpr):
    """One program per query block: dQ = scale * dS K over the key blocks it sees (same bounds as forward)."""
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n0 = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < D
    m_ok = offs_m < T
    Q += b.to(tl.int64) * sqb + h.to(tl.int64) * sqh
    K += b.to(tl.int64) * skb + h.to(tl.int64) * skh
    V += b.to(tl.int64) * svb + h.to(tl.int64) * svh
    DO += b.to(tl.int64) * sdb + h.to(tl.int64) * sdh
    klen = _load_klen(KLEN, b, S, HAS_KLEN)
    q = tl.load(Q + offs_m[:, None] * sqt + offs_d[None, :] * sqd, mask=m_ok[:, None] & d_ok[None, :],
                other=0.0)
    do = tl.load(DO + offs_m[:, None] * sdt + offs_d[None, :] * sdd, mask=m_ok[:, None] & d_ok[None, :],
                 other=0.0)
    lse = tl.load(LSE + pid_bh.to(tl.int64) * T + offs_m, mask=m_ok, other=0.0)
    delta = tl.load(DELTA + pid_bh.to(tl.int64) * T + offs_m, mask=m_ok, other=0.0)
    dq = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    lo, hi = _key_bounds(pid_m * BLOCK_M, T, S, klen, window, BLOCK_M, BLOCK_N, CAUSAL, WINDOWED)
    for start_n in range(lo, hi, BLOCK_N):
        offs_n = start_n + offs_n0
        n_ok = offs_n < klen
        kt = tl.load(K + offs_n[None, :] * sks + offs_d[:, None] * skd, mask=n_ok[None, :] & d_ok[:, None],
                     other=0.0)                                                    # (BD, BN)
        vt = tl.load(V + offs_n[None, :] * svs + offs_d[:, None] * svd, mask=n_ok[None, :] & d_ok[:, None],
                     other=0.0)                                                    # (BD, BN)
        s = tl.dot(q.to(DOT_DTYPE), kt.to(DOT_DTYPE), input_precision=PRECISION) * qk_scale
        vis = _visible(offs_m[:, None], offs_n[None, :], T, S, klen, window, CAUSAL, WINDOWED)
        p = tl.where(vis, tl.exp2(s - lse[:, None]), 0.0)                         # (BM, BN)
        dp = tl.dot(do.to(DOT_DTYPE), vt.to(DOT_DTYPE), input_precision=PRECISION)
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds.to(DOT_DTYPE), tl.trans(kt).to(DOT_DTYPE), input_precision=PRECISION)
    rows = pid_bh.to(tl.int64) * T + offs_m
    tl.store(DQ + rows[:, None] * D + offs_d[None, :], (dq * scale).to(DQ.dtype.element_ty),
             mask=m_ok[:, None] & d_ok[None, :])


# ----------------------------------------------------------------------------------------------------
# Launchers


def _interpreter_on() -> bool:
    """Whether triton runs kernels through its interpreter (TRITON_INTERPRET, read at triton import)."""
    knobs = getattr(triton, "knobs", None)                                      # triton >= 3.4
    if knobs is not None:
        return bool(knobs.runtime.interpret)
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def _interpreted(t: torch.Tensor) -> bool:
    return _interpreter_on() or t.device.type != "cuda"


def _dot_dtype(dtype: torch.dtype, interpreted: bool):
    """(DOT_DTYPE, PRECISION): tiles fed to tl.dot. bf16 -> fp32 under the interpreter (see module doc)."""
    if dtype == torch.float16:
        return tl.float16, "tf32"
    if dtype == torch.bfloat16:
        return (tl.float32, "ieee") if interpreted else (tl.bfloat16, "tf32")
    return tl.float32, ("tf32" if torch.backends.cuda.matmul.allow_tf32 and not interpreted else "ieee")


# GPU tiles per (kernel, 16-bit input, head dim > 64): (BLOCK_M, BLOCK_N, num_warps, num_stages). Chosen by
# compiling every kernel offline for sm_80 and sm_90 (translate/attention/triton_compile.py; CI checks them in
# tests/attention/test_triton_compile.py): no register spills and shared memory within the target's limit.
# BLOCK_M is the query tile, BLOCK_N the key tile.
_GPU_TILES = {
    ("fwd", True, False): (128, 64, 8, 3),
    ("fwd", True, True): (128, 32, 8, 2),
    ("fwd", False, False): (32, 32, 4, 2),
    ("fwd", False, True): (32, 16, 8, 2),
    ("dkdv", True, False): (32, 64, 4, 3),
    ("dkdv", True, True): (32, 32, 8, 2),
    ("dkdv", False, False): (32, 32, 8, 2),
    ("dkdv", False, True): (16, 32, 8, 2),
    ("dq", True, False): (64, 32, 4, 3),
    ("dq", True, True): (64, 32, 8, 2),
    ("dq", False, False): (32, 32, 4, 2),
    ("dq", False, True): (32, 16, 8, 2),
}


def _blocks(kind: str, T: int, S: int, block_d: int, dtype: torch.dtype, interpreted: bool) -> dict:
    """Tile sizes and launch options for one kernel. 16 x 16 tiles under the interpreter, so tiny test
    shapes cross several blocks; on a GPU the _GPU_TILES defaults, shrunk to short sequences (T = 1)."""
    if interpreted:
        return dict(BLOCK_M=16, BLOCK_N=16, num_warps=4, num_stages=1)
    bm, bn, warps, stages = _GPU_TILES[(kind, dtype != torch.float32, block_d > 64)]
    short_m = min(bm, max(16, triton.next_power_of_2(T)))
    short_n = min(bn, max(16, triton.next_power_of_2(S)))
    if (short_m, short_n) != (bm, bn):                                        # short sequences: fewer warps
        bm, bn, warps = short_m, short_n, min(warps, max(4, short_m * short_n // 256))
    return dict(BLOCK_M=bm, BLOCK_N=bn, num_warps=warps, num_stages=stages)


def _check(q, k, v, key_lengths, window):
    assert q.dim() == 4 and k.dim() == 4 and v.dim() == 4, (
        f"flash_attention: q, k, v must be (B, H, T|S, D), got {tuple(q.shape)}, {tuple(k.shape)}, "
        f"{tuple(v.shape)}")
    B, H, T, D = q.shape
    assert k.shape == v.shape and k.shape[:2] == (B, H) and k.shape[3] == D, (
        f"flash_attention: k, v must be (B, H, S, D) matching q {tuple(q.shape)}, got {tuple(k.shape)}, "
        f"{tuple(v.shape)}")
    assert 16 <= D <= 128, f"flash_attention: head dim {D} unsupported (16 to 128)"
    assert q.dtype in (torch.float32, torch.float16, torch.bfloat16), (
        f"flash_attention: dtype {q.dtype} unsupported (float32, float16, bfloat16)")
    assert q.dtype == k.dtype == v.dtype, f"flash_attention: dtypes differ: {q.dtype}, {k.dtype}, {v.dtype}"
    assert q.device == k.device == v.device, "flash_attention: q, k, v on different devices"
    assert q.device.type == "cuda" or _interpreter_on(), (
        "flash_attention: needs CUDA tensors, or TRITON_INTERPRET=1 set before triton is imported")
    assert T > 0 and k.shape[2] > 0, "flash_attention: empty query or key sequence"
    if key_lengths is not None:
        assert key_lengths.shape == (B,) and not key_lengths.is_floating_point(), (
            f"flash_attention: key_lengths must be an integer (B,) = ({B},) tensor, got "
            f"{key_lengths.dtype} {tuple(key_lengths.shape)}")
        assert key_lengths.device == q.device, "flash_attention: key_lengths on a different device than q"
    assert window is None or (isinstance(window, int) and not isinstance(window, bool) and window >= 0), (
        f"flash_attention: window must be None or an int >= 0, got {window!r}")


def _common(q, k, key_lengths, causal, window, scale):
    B, H, T, D = q.shape
    S = k.shape[2]
    interp = _interpreted(q)
    dot_dtype, precision = _dot_dtype(q.dtype, interp)
    if key_lengths is not None:
        klen = key_lengths.to(torch.int32).contiguous()
    else:
        klen = q.new_empty(1, dtype=torch.int32)                                  # never read
    return dict(B=B, H=H, T=T, S=S, D=D, interp=interp, BLOCK_D=max(16, triton.next_power_of_2(D)),
                klen=klen, consts=dict(HAS_KLEN=key_lengths is not None, CAUSAL=bool(causal),
                                       WINDOWED=window is not None, DOT_DTYPE=dot_dtype, PRECISION=precision),
                window=int(window or 0), scale=float(scale))


def flash_forward(q, k, v, key_lengths, causal, window, scale):
    """Launcher: out (B, H, T, D) in q's dtype, lse (B, H, T) fp32 in log2 units (scaled scores)."""
    _check(q, k, v, key_lengths, window)
    c = _common(q, k, key_lengths, causal, window, scale)
    B, H, T, S, D = c["B"], c["H"], c["T"], c["S"], c["D"]
    o = torch.empty_like(q, memory_format=torch.contiguous_format)
    lse = torch.empty((B, H, T), device=q.device, dtype=torch.float32)
    cfg = _blocks("fwd", T, S, c["BLOCK_D"], q.dtype, c["interp"])
    grid = (triton.cdiv(T, cfg["BLOCK_M"]), B * H)
    _fwd_kernel[grid](q, k, v, o, lse, c["klen"], *q.stride(), *k.stride(), *v.stride(), *o.stride(),
                      H, T, S, D, c["scale"] * LOG2E, c["window"], BLOCK_D=c["BLOCK_D"], **c["consts"], **cfg)
    return o, lse


def flash_backward(do, q, k, v, o, lse, key_lengths, causal, window, scale):
    """Launcher: (dq, dk, dv) in the input dtype; atomic-free: a kernel over key blocks, one over queries."""
    c = _common(q, k, key_lengths, causal, window, scale)
    B, H, T, S, D = c["B"], c["H"], c["T"], c["S"], c["D"]
    delta = torch.empty((B, H, T), device=q.device, dtype=torch.float32)
    pre = dict(BLOCK_M=16 if c["interp"] else 64)
    _bwd_preprocess_kernel[(triton.cdiv(T, pre["BLOCK_M"]), B * H)](
        o, do, delta, *o.stride(), *do.stride(), H, T, D, BLOCK_D=c["BLOCK_D"], **pre)
    dq = torch.empty((B, H, T, D), device=q.device, dtype=q.dtype)
    dk = torch.empty((B, H, S, D), device=q.device, dtype=q.dtype)
    dv = torch.empty((B, H, S, D), device=q.device, dtype=q.dtype)
    strides = (*q.stride(), *k.stride(), *v.stride(), *do.stride())
    args = (H, T, S, D, c["scale"] * LOG2E, c["scale"], c["window"])
    cfg = _blocks("dkdv", T, S, c["BLOCK_D"], q.dtype, c["interp"])
    _bwd_dkdv_kernel[(triton.cdiv(S, cfg["BLOCK_N"]), B * H)](
        q, k, v, do, lse, delta, dk, dv, c["klen"], *strides, *args, BLOCK_D=c["BLOCK_D"], **c["consts"],
        **cfg)
    cfg = _blocks("dq", T, S, c["BLOCK_D"], q.dtype, c["interp"])
    _bwd_dq_kernel[(triton.cdiv(T, cfg["BLOCK_M"]), B * H)](
        q, k, v, do, lse, delta, dq, c["klen"], *strides, *args, BLOCK_D=c["BLOCK_D"], **c["consts"], **cfg)
    return dq, dk, dv


class FlashAttentionFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, key_lengths, causal, window, scale):
        o, lse = flash_forward(q, k, v, key_lengths, causal, window, scale)
        ctx.save_for_backward(q, k, v, o, lse, key_lengths)
        ctx.args = (causal, window, scale)
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, o, lse, key_lengths = ctx.saved_tensors
        dq, dk, dv = flash_backward(do, q, k, v, o, lse, key_lengths, *ctx.args)
        return dq, dk, dv, None, None, None, None


def flash_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    key_lengths: torch.Tensor | None = None, causal: bool = False, window: int | None = None,
                    scale: float | None = None) -> torch.Tensor:
    """softmax(scale * q k^T + masks) v without the (B, H, T, S) matrix; see the module docstring for masks.

    q (B, H, T, D), k and v (B, H, S, D), key_lengths (B,) integer (keys j >= key_lengths[b] are padding)
    or None, scale defaults to 1/sqrt(D). Returns out (B, H, T, D) in q's dtype, differentiable in q, k, v.
    """
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    return FlashAttentionFn.apply(q, k, v, key_lengths, causal, window, scale)
