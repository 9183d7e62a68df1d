"""Fused additive (Bahdanau) attention in Triton, forward and backward.

Legend: B batch, T queries (decoder steps), S keys (source positions), A attention hidden dim,
Dk value (context) dim.

    e[b,t,s] = sum_a v[a] * tanh(wq[b,t,a] + uk[b,s,a])      (wq = W s_t, uk = U h_s, projected once)
    a[b,t,:] = softmax over s < key_lengths[b] of e[b,t,:]
    c[b,t,:] = sum_s a[b,t,s] * values[b,s,:]

Why: the plain version materialises the (B, T, S, A) tanh tensor (and keeps it for the backward), the
biggest activation of an RNNsearch decoder. Here one program owns (b, a block of BLOCK_T queries), walks
the keys in BLOCK_S blocks with an online softmax, and builds each (BLOCK_T, BLOCK_S) score tile from
(BLOCK_T, BLOCK_S, BLOCK_A) tanh chunks in registers; only the log-sum-exp per query is kept. BLOCK_T is
16 (tl.dot for the context) or, for T < 16 such as one decoding step, 1 (broadcast multiply-sums). The
backward recomputes tanh: a kernel per query block gives d wq (and delta = rowsum(dC * C)), a kernel per
key block gives d values, d uk and per-block partial sums of d v; no atomics, each program read-modify-
writes only the fp32 rows it owns. A query whose keys are all padding (key_lengths[b] == 0) gets a zero
context and zero gradients.

tanh is computed as sign(x) (1 - e) / (1 + e), e = exp(-2|x|): exact to fp32 rounding, no overflow, the
same code in the compiled and the interpreted path. Tiles fed to tl.dot are cast to DOT_DTYPE: the input
dtype on a GPU, fp32 for bf16 under the Triton interpreter, whose bf16 x bf16 tl.dot returns garbage
(triton 3.9.0); see translate/attention/triton_flash.py.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from translate.attention.triton_flash import _dot_dtype, _interpreted, _interpreter_on


@triton.jit
def _tanh(x):
    e = tl.exp2(-2.885390081777927 * tl.abs(x))                # exp(-2|x|), 2.885 = 2 * log2(e)
    t = (1.0 - e) / (1.0 + e)
    return tl.where(x >= 0, t, -t)


@triton.jit
def _mm(a, b, USE_DOT: tl.constexpr, DOT_DTYPE: tl.constexpr, PRECISION: tl.constexpr):
    """a @ b in fp32: tl.dot (tensor cores) for blocks of 16 queries, a broadcast multiply-sum for single
    queries (BLOCK_T = 1, decoding one step), where tl.dot's 16-row minimum would waste 15/16 of the work."""
    if USE_DOT:
        out = tl.dot(a.to(DOT_DTYPE), b.to(DOT_DTYPE), input_precision=PRECISION)
    else:
        out = tl.sum(a.to(tl.float32)[:, :, None] * b.to(tl.float32)[None, :, :], 1)
    return out


@triton.jit
def _tanh_chunk(WQ, UK, VW, offs_t, offs_s, t_ok, s_ok, offs_a, a_ok, swt, swa, sus, sua, sva):
    """tanh(wq_t + uk_s) on one A chunk, (BT, BS, BA) fp32, and v on that chunk (BA,); masked lanes give 0."""
    wq = tl.load(WQ + offs_t[:, None] * swt + offs_a[None, :] * swa, mask=t_ok[:, None] & a_ok[None, :],
                 other=0.0).to(tl.float32)                                         # (BT, BA)
    uk = tl.load(UK + offs_s[:, None] * sus + offs_a[None, :] * sua, mask=s_ok[:, None] & a_ok[None, :],
                 other=0.0).to(tl.float32)                                         # (BS, BA)
    vw = tl.load(VW + offs_a * sva, mask=a_ok, other=0.0).to(tl.float32)           # (BA,)
    return _tanh(wq[:, None, :] + uk[None, :, :]), vw


@triton.jit
def _scores(WQ, UK, VW, offs_t, offs_s, t_ok, s_ok, A, swt, swa, sus, sua, sva,
            BLOCK_T: tl.constexpr, BLOCK_S: tl.constexpr, BLOCK_A: tl.constexpr):
    """(BLOCK_T, BLOCK_S) fp32 tile of e = v . tanh(wq_t + uk_s), summed over A in BLOCK_A chunks."""
    e = tl.zeros([BLOCK_T, BLOCK_S], tl.float32)
    for a0 in range(0, A, BLOCK_A):
        offs_a = a0 + tl.arange(0, BLOCK_A)
        th, vw = _tanh_chunk(WQ, UK, VW, offs_t, offs_s, t_ok, s_ok, offs_a, offs_a < A,
                             swt, swa, sus, sua, sva)
        e += tl.sum(th * vw[None, None, :], 2)
    return e


@triton.jit
def _fwd_kernel(WQ, UK, VW, VAL, CTX, LSE, KLEN,
                swb, swt, swa, sub, sus, sua, sva, svb, svs, svd, scb, sct, scd,
                T, S, A, DK,
                HAS_KLEN: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_S: tl.constexpr, BLOCK_A: tl.constexpr,
                BLOCK_DK: tl.constexpr, USE_DOT: tl.constexpr, DOT_DTYPE: tl.constexpr,
                PRECISION: tl.constexpr):
    pid_t = tl.program_id(0)
    b = tl.program_id(1)
    offs_t = pid_t * BLOCK_T + tl.arange(0, BLOCK_T)
    offs_s0 = tl.arange(0, BLOCK_S)
    offs_d = tl.arange(0, BLOCK_DK)
    t_ok = offs_t < T
    d_ok = offs_d < DK
    WQ += b.to(tl.int64) * swb
    UK += b.to(tl.int64) * sub
    VAL += b.to(tl.int64) * svb
    klen = S + 0 * b
    if HAS_KLEN:
        klen = tl.minimum(tl.maximum(tl.load(KLEN + b), 0), S)
    m_i = tl.full([BLOCK_T], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_T], tl.float32)
    acc = tl.zeros([BLOCK_T, BLOCK_DK], tl.float32)
    for s0 in range(0, klen, BLOCK_S):
        offs_s = s0 + offs_s0
        s_ok = offs_s < klen
        e = _scores(WQ, UK, VW, offs_t, offs_s, t_ok, s_ok, A, swt, swa, sus, sua, sva,
                    BLOCK_T, BLOCK_S, BLOCK_A)
        e = tl.where(s_ok[None, :], e * 1.4426950408889634, float("-inf"))       # log2 units
        m_new = tl.maximum(m_i, tl.max(e, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        p = tl.exp2(e - m_safe[:, None])
        alpha = tl.exp2(m_i - m_safe)
        l_i = l_i * alpha + tl.sum(p, 1)
        val = tl.load(VAL + offs_s[:, None] * svs + offs_d[None, :] * svd, mask=s_ok[:, None] & d_ok[None, :],
                      other=0.0)                                                   # (BS, BDK)
        acc = acc * alpha[:, None] + _mm(p, val, USE_DOT, DOT_DTYPE, PRECISION)
        m_i = m_new
    seen = l_i > 0.0
    ctx = acc / tl.where(seen, l_i, 1.0)[:, None]
    lse = tl.where(seen, m_i + tl.log2(tl.where(seen, l_i, 1.0)), 0.0)
    tl.store(CTX + b.to(tl.int64) * scb + offs_t[:, None] * sct + offs_d[None, :] * scd,
             ctx.to(CTX.dtype.element_ty), mask=t_ok[:, None] & d_ok[None, :])
    tl.store(LSE + b.to(tl.int64) * T + offs_t, lse, mask=t_ok)


@triton.jit
def _probs_and_dscores(WQ, UK, VW, VAL, DC, lse, delta, offs_t, offs_s, t_ok, s_ok,
                       A, DK, swt, swa, sus, sua, sva, svs, svd, sdt, sdd,
                       BLOCK_T: tl.constexpr, BLOCK_S: tl.constexpr, BLOCK_A: tl.constexpr,
                       BLOCK_DC: tl.constexpr, USE_DOT: tl.constexpr, DOT_DTYPE: tl.constexpr,
                       PRECISION: tl.constexpr):
    """Recomputed probabilities p and score gradients de = p * (dC . values - delta), (BT, BS) each.
    dC . values runs over Dk in BLOCK_DC chunks, so large value dims keep the dot operands small."""
    e = _scores(WQ, UK, VW, offs_t, offs_s, t_ok, s_ok, A, swt, swa, sus, sua, sva, BLOCK_T, BLOCK_S, BLOCK_A)
    p = tl.where(t_ok[:, None] & s_ok[None, :], tl.exp2(e * 1.4426950408889634 - lse[:, None]), 0.0)
    da = tl.zeros([BLOCK_T, BLOCK_S], tl.float32)                                 # dL/da (BT, BS)
    for c0 in range(0, DK, BLOCK_DC):
        offs_c = c0 + tl.arange(0, BLOCK_DC)
        c_ok = offs_c < DK
        dc = tl.load(DC + offs_t[:, None] * sdt + offs_c[None, :] * sdd, mask=t_ok[:, None] & c_ok[None, :],
                     other=0.0)                                                    # (BT, BDC)
        val_t = tl.load(VAL + offs_s[None, :] * svs + offs_c[:, None] * svd,
                        mask=s_ok[None, :] & c_ok[:, None], other=0.0)             # (BDC, BS)
        da += _mm(dc, val_t, USE_DOT, DOT_DTYPE, PRECISION)
    return p, p * (da - delta[:, None])


@triton.jit
def _bwd_dwq_kernel(WQ, UK, VW, VAL, CTX, DC, LSE, DELTA, DWQ, KLEN,
                    swb, swt, swa, sub, sus, sua, sva, svb, svs, svd, scb, sct, scd, sdb, sdt, sdd,
                    T, S, A, DK,
                    HAS_KLEN: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_S: tl.constexpr,
                    BLOCK_A: tl.constexpr, BLOCK_DK: tl.constexpr, BLOCK_DC: tl.constexpr,
                    USE_DOT: tl.constexpr, DOT_DTYPE: tl.constexpr, PRECISION: tl.constexpr):
    """Per (query block, b): delta = rowsum(dC * C), then d wq[t, a] = sum_s de[t, s] v[a] (1 - tanh^2)."""
    pid_t = tl.program_id(0)
    b = tl.program_id(1)
    offs_t = pid_t * BLOCK_T + tl.arange(0, BLOCK_T)
    offs_s0 = tl.arange(0, BLOCK_S)
    offs_d = tl.arange(0, BLOCK_DK)
    t_ok = offs_t < T
    d_ok = offs_d < DK
    td_ok = t_ok[:, None] & d_ok[None, :]
    WQ += b.to(tl.int64) * swb
    UK += b.to(tl.int64) * sub
    VAL += b.to(tl.int64) * svb
    DC += b.to(tl.int64) * sdb
    LSE += b.to(tl.int64) * T
    DELTA += b.to(tl.int64) * T
    DWQ += b.to(tl.int64) * T * A
    ctx = tl.load(CTX + b.to(tl.int64) * scb + offs_t[:, None] * sct + offs_d[None, :] * scd, mask=td_ok,
                  other=0.0).to(tl.float32)
    dcr = tl.load(DC + offs_t[:, None] * sdt + offs_d[None, :] * sdd, mask=td_ok, other=0.0).to(tl.float32)
    delta = tl.sum(ctx * dcr, 1)                                                   # (BT,)
    tl.store(DELTA + offs_t, delta, mask=t_ok)
    lse = tl.load(LSE + offs_t, mask=t_ok, other=0.0)
    klen = S + 0 * b
    if HAS_KLEN:
        klen = tl.minimum(tl.maximum(tl.load(KLEN + b), 0), S)
    for s0 in range(0, klen, BLOCK_S):
        offs_s = s0 + offs_s0
        s_ok = offs_s < klen
        de = _probs_and_dscores(WQ, UK, VW, VAL, DC, lse, delta, offs_t, offs_s, t_ok, s_ok,
                                A, DK, swt, swa, sus, sua, sva, svs, svd, sdt, sdd,
                                BLOCK_T, BLOCK_S, BLOCK_A, BLOCK_DC, USE_DOT, DOT_DTYPE,
                                   PRECISION)[1]
        for a0 in range(0, A, BLOCK_A):
            offs_a = a0 + tl.arange(0, BLOCK_A)
            a_ok = offs_a < A
            ta_ok = t_ok[:, None] & a_ok[None, :]
            th, vw = _tanh_chunk(WQ, UK, VW, offs_t, offs_s, t_ok, s_ok, offs_a, a_ok,
                                 swt, swa, sus, sua, sva)
            g = de[:, :, None] * vw[None, None, :] * (1.0 - th * th)
            ptrs = DWQ + offs_t[:, None] * A + offs_a[None, :]                     # fp32 scratch (B, T, A)
            tl.store(ptrs, tl.load(ptrs, mask=ta_ok, other=0.0) + tl.sum(g, 1), mask=ta_ok)
        tl.debug_barrier()                       # this block's read-modify-writes land before the next pass


@triton.jit
def _bwd_dkv_kernel(WQ, UK, VW, VAL, DC, LSE, DELTA, DUK, DVAL, DVW, KLEN,
                    swb, swt, swa, sub, sus, sua, sva, svb, svs, svd, sdb, sdt, sdd,
                    T, S, A, DK,
                    HAS_KLEN: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_S: tl.constexpr,
                    BLOCK_A: tl.constexpr, BLOCK_DK: tl.constexpr, BLOCK_DC: tl.constexpr,
                    USE_DOT: tl.constexpr, DOT_DTYPE: tl.constexpr, PRECISION: tl.constexpr):
    """Per (key block, b): d values = P^T dC, d uk[s, a] = sum_t g, partial d v[a] = sum_{t,s} de tanh."""
    pid_s = tl.program_id(0)
    b = tl.program_id(1)
    offs_s = pid_s * BLOCK_S + tl.arange(0, BLOCK_S)
    offs_t0 = tl.arange(0, BLOCK_T)
    offs_d = tl.arange(0, BLOCK_DK)
    d_ok = offs_d < DK
    WQ += b.to(tl.int64) * swb
    UK += b.to(tl.int64) * sub
    VAL += b.to(tl.int64) * svb
    DC += b.to(tl.int64) * sdb
    LSE += b.to(tl.int64) * T
    DELTA += b.to(tl.int64) * T
    DUK += b.to(tl.int64) * S * A
    DVW += (b * tl.num_programs(0) + pid_s).to(tl.int64) * A                     # partial row of this program
    klen = S + 0 * b
    if HAS_KLEN:
        klen = tl.minimum(tl.maximum(tl.load(KLEN + b), 0), S)
    s_ok = offs_s < klen
    t_hi = tl.where(pid_s * BLOCK_S < klen, T, 0)                                  # padding keys: no work
    dval = tl.zeros([BLOCK_S, BLOCK_DK], tl.float32)
    for t0 in range(0, t_hi, BLOCK_T):
        offs_t = t0 + offs_t0
        t_ok = offs_t < T
        lse = tl.load(LSE + offs_t, mask=t_ok, other=0.0)
        delta = tl.load(DELTA + offs_t, mask=t_ok, other=0.0)
        p, de = _probs_and_dscores(WQ, UK, VW, VAL, DC, lse, delta, offs_t, offs_s, t_ok, s_ok,
                                   A, DK, swt, swa, sus, sua, sva, svs, svd, sdt, sdd,
                                   BLOCK_T, BLOCK_S, BLOCK_A, BLOCK_DC, USE_DOT, DOT_DTYPE,
                                   PRECISION)
        dc = tl.load(DC + offs_t[:, None] * sdt + offs_d[None, :] * sdd, mask=t_ok[:, None] & d_ok[None, :],
                     other=0.0)                                                    # (BT, BDK)
        dval += _mm(tl.trans(p), dc, USE_DOT, DOT_DTYPE, PRECISION)
        for a0 in range(0, A, BLOCK_A):
            offs_a = a0 + tl.arange(0, BLOCK_A)
            a_ok = offs_a < A
            sa_ok = s_ok[:, None] & a_ok[None, :]
            th, vw = _tanh_chunk(WQ, UK, VW, offs_t, offs_s, t_ok, s_ok, offs_a, a_ok,
                                 swt, swa, sus, sua, sva)
            g = de[:, :, None] * vw[None, None, :] * (1.0 - th * th)
            ptrs = DUK + offs_s[:, None] * A + offs_a[None, :]                     # fp32 scratch (B, S, A)
            tl.store(ptrs, tl.load(ptrs, mask=sa_ok, other=0.0) + tl.sum(g, 0), mask=sa_ok)
            dvw = tl.sum(tl.sum(de[:, :, None] * th, 1), 0)                        # (BA,)
            tl.store(DVW + offs_a, tl.load(DVW + offs_a, mask=a_ok, other=0.0) + dvw, mask=a_ok)
        tl.debug_barrier()                       # this block's read-modify-writes land before the next pass
    rows = b.to(tl.int64) * S + offs_s                             # DVAL is contiguous (B, S, Dk)
    tl.store(DVAL + rows[:, None] * DK + offs_d[None, :], dval.to(DVAL.dtype.element_ty),
             mask=(offs_s < S)[:, None] & d_ok[None, :])


# ----------------------------------------------------------------------------------------------------
# Launchers


def _blocks(T: int, block_dk: int, interpreted: bool) -> dict:
    """Tile sizes. Blocks of 16 queries (tl.dot's minimum) when T >= 16, single queries otherwise (decoding
    one step at a time, the RNNsearch case). On a GPU the (BT, BS, BA) tanh tile is 16 x 32 x 8 or
    1 x 64 x 16 fp32 values, and BLOCK_S shrinks for large value dims so the (BS, Dk) tiles stay small
    (no spills on sm_80 or sm_90: tests/attention/test_triton_compile.py, scripts/compile_kernels.py).
    Under the interpreter 16-wide tiles, so tiny test shapes cross several blocks."""
    single = T < 16
    if interpreted:
        bt, bs, ba, warps, stages = (1 if single else 16), 16, 16, 4, 1
    elif single:
        bs = max(16, min(64, 4096 // block_dk))                                  # (BS, Dk) <= 4K values
        bt, ba, warps, stages = 1, 16, (8 if block_dk >= 512 else 4), 2
    elif block_dk >= 256:
        bt, bs, ba, warps, stages = 16, 16, 8, 8, 1
    else:
        bt, bs, ba, warps, stages = 16, 32, 8, 4, 2
    return dict(BLOCK_T=bt, BLOCK_S=bs, BLOCK_A=ba, USE_DOT=bt >= 16, num_warps=warps, num_stages=stages)


def _bwd_blocks(cfg: dict, block_dk: int, dtype: torch.dtype, interpreted: bool) -> dict:
    """The backward kernels' tiles: the forward's, without software pipelining (the fp32 read-modify-write
    passes), dC . values in Dk chunks of BLOCK_DC. On a GPU with 16-query blocks: 16 keys, and 8 warps
    (4 for 16-bit values up to Dk 128), where the forward's 32-key, 4-warp tile spills 200-500 B (fp32)
    and 24-48 B (16-bit) at Dk 128 (scripts/compile_kernels.py)."""
    cfg = dict(cfg, num_stages=1, BLOCK_DC=16 if interpreted else min(block_dk, 128))
    if not interpreted and cfg["BLOCK_T"] >= 16:
        cfg.update(BLOCK_S=16, num_warps=4 if dtype != torch.float32 and block_dk <= 128 else 8)
    return cfg


def _check(wq, uk, v_weight, values, key_lengths):
    assert wq.dim() == 3 and uk.dim() == 3 and values.dim() == 3 and v_weight.dim() == 1, (
        f"additive_attention: expected wq (B,T,A), uk (B,S,A), v_weight (A,), values (B,S,Dk), got "
        f"{tuple(wq.shape)}, {tuple(uk.shape)}, {tuple(v_weight.shape)}, {tuple(values.shape)}")
    B, T, A = wq.shape
    assert uk.shape[0] == B and uk.shape[2] == A and v_weight.shape[0] == A, (
        f"additive_attention: A or B mismatch: wq {tuple(wq.shape)}, uk {tuple(uk.shape)}, "
        f"v_weight {tuple(v_weight.shape)}")
    assert values.shape[:2] == uk.shape[:2], (
        f"additive_attention: values {tuple(values.shape)} must be (B, S, Dk) with uk {tuple(uk.shape)}")
    assert 1 <= values.shape[2] <= 1024, (
        f"additive_attention: value dim {values.shape[2]} unsupported (1 to 1024)")
    assert T > 0 and uk.shape[1] > 0 and A > 0, "additive_attention: empty T, S or A"
    # Mixed dtypes are fine (e.g. fp16 projections with an fp32 v under autocast): every load is cast.
    for name, t in (("wq", wq), ("uk", uk), ("v_weight", v_weight), ("values", values)):
        assert t.dtype in (torch.float32, torch.float16, torch.bfloat16), (
            f"additive_attention: {name} dtype {t.dtype} unsupported (float32, float16, bfloat16)")
    devices = {wq.device, uk.device, v_weight.device, values.device}
    assert len(devices) == 1, f"additive_attention: tensors on several devices: {devices}"
    assert wq.device.type == "cuda" or _interpreter_on(), (
        "additive_attention: needs CUDA tensors, or TRITON_INTERPRET=1 set before triton is imported")
    if key_lengths is not None:
        assert key_lengths.shape == (B,) and not key_lengths.is_floating_point(), (
            f"additive_attention: key_lengths must be an integer ({B},) tensor, got {key_lengths.dtype} "
            f"{tuple(key_lengths.shape)}")
        assert key_lengths.device == wq.device, "additive_attention: key_lengths on another device"


def _setup(wq, values, key_lengths):
    interp = _interpreted(wq)
    dot_dtype, precision = _dot_dtype(values.dtype, interp)
    block_dk = max(16, triton.next_power_of_2(values.shape[2]))
    if key_lengths is not None:
        klen = key_lengths.to(torch.int32).contiguous()
    else:
        klen = wq.new_empty(1, dtype=torch.int32)                                 # never read
    consts = dict(HAS_KLEN=key_lengths is not None, BLOCK_DK=block_dk, DOT_DTYPE=dot_dtype,
                  PRECISION=precision)
    return klen, consts, _blocks(wq.shape[1], block_dk, interp)


def additive_forward(wq, uk, v_weight, values, key_lengths):
    """Launcher: context (B, T, Dk) in values' dtype and lse (B, T) fp32 (log2 units)."""
    _check(wq, uk, v_weight, values, key_lengths)
    B, T, A = wq.shape
    S, DK = values.shape[1], values.shape[2]
    klen, consts, cfg = _setup(wq, values, key_lengths)
    ctx = torch.empty((B, T, DK), device=wq.device, dtype=values.dtype)
    lse = torch.empty((B, T), device=wq.device, dtype=torch.float32)
    _fwd_kernel[(triton.cdiv(T, cfg["BLOCK_T"]), B)](
        wq, uk, v_weight, values, ctx, lse, klen, *wq.stride(), *uk.stride(), *v_weight.stride(),
        *values.stride(), *ctx.stride(), T, S, A, DK, **consts, **cfg)
    return ctx, lse


def additive_backward(dctx, wq, uk, v_weight, values, ctx, lse, key_lengths):
    """Launcher: (d wq, d uk, d v_weight, d values), each in its input's dtype."""
    B, T, A = wq.shape
    S, DK = values.shape[1], values.shape[2]
    klen, consts, cfg = _setup(wq, values, key_lengths)
    cfg = _bwd_blocks(cfg, consts["BLOCK_DK"], values.dtype, _interpreted(wq))
    delta = torch.empty((B, T), device=wq.device, dtype=torch.float32)
    dwq = torch.zeros((B, T, A), device=wq.device, dtype=torch.float32)
    duk = torch.zeros((B, S, A), device=wq.device, dtype=torch.float32)
    n_sblocks = triton.cdiv(S, cfg["BLOCK_S"])
    dvw = torch.zeros((B * n_sblocks, A), device=wq.device, dtype=torch.float32)
    dval = torch.empty((B, S, DK), device=wq.device, dtype=values.dtype)
    _bwd_dwq_kernel[(triton.cdiv(T, cfg["BLOCK_T"]), B)](
        wq, uk, v_weight, values, ctx, dctx, lse, delta, dwq, klen, *wq.stride(), *uk.stride(),
        *v_weight.stride(), *values.stride(), *ctx.stride(), *dctx.stride(), T, S, A, DK, **consts, **cfg)
    _bwd_dkv_kernel[(n_sblocks, B)](
        wq, uk, v_weight, values, dctx, lse, delta, duk, dval, dvw, klen, *wq.stride(), *uk.stride(),
        *v_weight.stride(), *values.stride(), *dctx.stride(), T, S, A, DK, **consts, **cfg)
    return dwq.to(wq.dtype), duk.to(uk.dtype), dvw.sum(0).to(v_weight.dtype), dval


class AdditiveAttentionFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, wq, uk, v_weight, values, key_lengths):
        out, lse = additive_forward(wq, uk, v_weight, values, key_lengths)
        ctx.save_for_backward(wq, uk, v_weight, values, out, lse, key_lengths)
        return out

    @staticmethod
    def backward(ctx, dout):
        wq, uk, v_weight, values, out, lse, key_lengths = ctx.saved_tensors
        dwq, duk, dvw, dval = additive_backward(dout, wq, uk, v_weight, values, out, lse, key_lengths)
        return dwq, duk, dvw, dval, None


def additive_attention(wq: torch.Tensor, uk: torch.Tensor, v_weight: torch.Tensor, values: torch.Tensor,
                       key_lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Bahdanau attention context without the (B, T, S, A) tensor; see the module docstring.

    wq (B, T, A) = W s_t, uk (B, S, A) = U h_s, v_weight (A,), values (B, S, Dk), key_lengths (B,) integer
    (keys s >= key_lengths[b] are padding) or None. Returns context (B, T, Dk), differentiable in all four.
    """
    return AdditiveAttentionFn.apply(wq, uk, v_weight, values, key_lengths)

