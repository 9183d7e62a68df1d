"""Triton paged-attention decode kernel (translate/attention/triton_paged.py) against the gather reference.

Without CUDA these run through Triton's interpreter (tests/conftest.py sets TRITON_INTERPRET=1). Tolerance is
relative to PyTorch's own error at the input dtype, as for the other kernels:
max|ours - ref| <= 2 * max|gather+math at that dtype - ref| + atol * max(1, max|ref|), ref in float64.
"""

import pytest
import torch

pytest.importorskip("triton", reason="triton is not installed: the fused kernels cannot be tested")

from translate.attention.paged import paged_attention, paged_attention_reference  # noqa: E402
from translate.attention.triton_paged import paged_decode_attention  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
ATOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}


def _case(B, H, D, N, P, lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, 1, D, generator=g)
    kp, vp = torch.randn(N, P, H, D, generator=g), torch.randn(N, P, H, D, generator=g)
    M = max(1, max(-(-n // P) for n in lengths))
    tables = torch.stack([torch.randperm(N, generator=g)[:M] for _ in range(B)])  # (B, M) scattered blocks
    return q, kp, vp, tables, torch.tensor(lengths)


@pytest.mark.parametrize(
    "B,H,D,N,P,lengths,dtype",
    [
        (3, 2, 16, 12, 4, [10, 1, 8], torch.float32),      # partial and exactly full last blocks
        (2, 1, 24, 9, 5, [17, 3], torch.float32),          # block size and head dim not powers of 2
        (2, 2, 32, 8, 16, [33, 16], torch.float16),
        (1, 2, 64, 6, 8, [20], torch.bfloat16),
    ],
)
def test_paged_kernel_matches_the_reference(B, H, D, N, P, lengths, dtype):
    q, kp, vp, tables, lens = _case(B, H, D, N, P, lengths)
    scale = D ** -0.5
    ref = paged_attention_reference(q.double(), kp.double(), vp.double(), tables, lens, scale)
    same = paged_attention_reference(q.to(dtype), kp.to(dtype), vp.to(dtype), tables, lens, scale)
    dev = [t.to(DEVICE) for t in (q.to(dtype), kp.to(dtype), vp.to(dtype), tables, lens)]
    ours = paged_decode_attention(*dev, scale).cpu()
    assert ours.dtype == dtype and ours.shape == (B, H, 1, D)
    err = (ours.double() - ref).abs().max().item()
    bound = 2 * (same.double() - ref).abs().max().item() + ATOL[dtype] * max(1.0, ref.abs().max().item())
    assert err <= bound, f"max error {err:.3g} > bound {bound:.3g} ({dtype})"


def test_slots_beyond_the_length_and_unlisted_blocks_are_never_read():
    """NaN everywhere a row may not look (other blocks, slots past its length): finite output shows the
    kernel reads only the listed blocks' filled slots; a row of length 0 gives zeros."""
    q, kp, vp, tables, lens = _case(2, 1, 16, 6, 4, [6, 0])
    tables[1] = tables[0]
    poisoned_k, poisoned_v = torch.full_like(kp, float("nan")), torch.full_like(vp, float("nan"))
    for j, n in enumerate((4, 2)):  # row 0: block 0 full, block 1 holds 2 slots
        block = tables[0, j]
        poisoned_k[block, :n], poisoned_v[block, :n] = kp[block, :n], vp[block, :n]
    out = paged_decode_attention(*(t.to(DEVICE) for t in (q, poisoned_k, poisoned_v, tables, lens)), 0.25)
    ref = paged_attention_reference(q, kp, vp, tables, lens, 0.25)
    assert torch.isfinite(out).all() and torch.all(out[1] == 0)
    torch.testing.assert_close(out.cpu(), ref)


def test_dispatch_picks_the_kernel_under_triton_and_the_gather_path_otherwise():
    q, kp, vp, tables, lens = _case(2, 2, 16, 8, 4, [7, 3])
    args = [t.to(DEVICE) for t in (q, kp, vp, tables, lens)]
    torch.testing.assert_close(paged_attention(*args, backend="triton").cpu(),
                               paged_attention(*args, backend="math").cpu())  # fmt: skip


def test_rejects_unsupported_inputs():
    q, kp, vp, tables, lens = _case(1, 1, 16, 4, 4, [3])
    with pytest.raises(AssertionError, match="one query per row"):
        paged_decode_attention(q.expand(1, 1, 2, 16), kp, vp, tables, lens, 1.0)
    with pytest.raises(AssertionError, match="dtypes differ"):
        paged_decode_attention(q.half(), kp, vp, tables, lens, 1.0)
    with pytest.raises(AssertionError, match="tables"):
        paged_decode_attention(q, kp, vp, tables.float(), lens, 1.0)
