"""Paged KV cache (PagedAttention, Kwon et al. 2023, vLLM) for decoder self-attention.

Legend: B rows (sequences), H heads, D head dim, L layers, N blocks in the pool, P block size (tokens),
M blocks per row (the longest row's), S = M * P key slots a row can see.

BlockPool: per layer one (N, P, H, D) tensor for keys and one for values; blocks are handed out from a free
list (lowest id first) and counted by reference, so two beams that share a prefix share its blocks. The pool
doubles when it runs out and gives memory back after a burst: trim() cuts the free blocks above the highest
one in use once the pool holds more than twice what it needs (max(initial size, 2 x blocks in use)).
PagedKVCache: the rows of a decoding batch, each a block table (list of block ids) and a length. Everything
that changes rows moves block ids, never keys or values:
  reorder(index)  beams forking (a row repeated), beams or sentences leaving (rows dropped): the tables are
                  re-indexed, references taken and given back; a block nobody references is free again;
  join(other)     sentences joining a running batch: the tables are concatenated (one pool).
The one copy: before a row writes into a partly filled last block that another row shares (a beam that
forked), it gets its own copy of that block (copy-on-write: one block per forked row, all of a step's
copies in one indexed copy per layer).
Attention reads through the block table: paged_attention gathers the row's blocks and runs the attention
core (the reference, and the CPU path), or runs the Triton decode kernel (triton_paged.py) on CUDA.
"""

from __future__ import annotations

import heapq
import math

import torch
from torch import Tensor

from translate.attention.backend import resolve_backend, scaled_dot_product


class BlockPool:
    """Fixed-size blocks of keys and values for every layer of one decoder; grows by doubling when empty,
    shrinks (trim) when mostly free."""

    def __init__(self, layers: int, heads: int, head_dim: int, block_size: int, num_blocks: int = 64,
                 dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"):  # fmt: skip
        if block_size < 1 or num_blocks < 1:
            raise ValueError(f"block_size and num_blocks must be >= 1, got {block_size}, {num_blocks}")
        self.block_size, self.heads, self.head_dim = block_size, heads, head_dim
        shape = (num_blocks, block_size, heads, head_dim)
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]  # L x (N, P, H, D)
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.initial = num_blocks
        self.refs = [0] * num_blocks
        self.free = list(range(num_blocks))  # a min-heap: the lowest id is handed out first
        self.copied_tokens = 0  # copy-on-write traffic, in slots (x layers x 2 x H x D elements)
        self.peak_in_use = 0

    @property
    def num_blocks(self) -> int:
        return len(self.refs)

    @property
    def in_use(self) -> int:
        return self.num_blocks - len(self.free)

    def bytes_per_block(self) -> int:
        k = self.k[0]
        return 2 * len(self.k) * self.block_size * self.heads * self.head_dim * k.element_size()

    def allocate(self) -> int:
        if not self.free:
            self._grow()
        block = heapq.heappop(self.free)
        self.refs[block] = 1
        self.peak_in_use = max(self.peak_in_use, self.in_use)
        return block

    def retain(self, block: int) -> None:
        self.refs[block] += 1

    def release(self, block: int) -> None:
        self.refs[block] -= 1
        if self.refs[block] == 0:
            heapq.heappush(self.free, block)

    def copy(self, src: list[int], dst: list[int]) -> None:
        """Blocks src[i] into blocks dst[i], in every layer (copy-on-write): one indexed copy per tensor."""
        if not src:
            return
        device = self.k[0].device
        s, d = torch.tensor(src, device=device), torch.tensor(dst, device=device)
        for pool in (*self.k, *self.v):
            pool.index_copy_(0, d, pool.index_select(0, s))  # (much faster than pool[d] = pool[s])
        self.copied_tokens += len(src) * self.block_size

    def _grow(self) -> None:
        n = self.num_blocks
        self.k = [torch.cat([t, torch.zeros_like(t)]) for t in self.k]  # (2N, P, H, D)
        self.v = [torch.cat([t, torch.zeros_like(t)]) for t in self.v]
        self.refs += [0] * n
        self.free += range(n, 2 * n)  # all above every id in the heap: still a heap

    def trim(self) -> int:
        """Give back the free blocks above the highest one in use when the pool holds more than twice what it
        needs, max(initial size, 2 x blocks in use) (hysteresis: a steady load never grows and shrinks it
        step after step). -> blocks given back (0 when it keeps them)."""
        need = max(self.initial, 2 * self.in_use)
        if self.num_blocks <= 2 * need:
            return 0
        top = max((b for b, r in enumerate(self.refs) if r > 0), default=-1)  # the highest block in use
        n = max(need, top + 1)
        if n >= self.num_blocks:
            return 0
        gone = self.num_blocks - n
        self.k = [t[:n].clone() for t in self.k]  # a copy, so the old storage is freed
        self.v = [t[:n].clone() for t in self.v]
        self.refs = self.refs[:n]
        self.free = [b for b in self.free if b < n]
        heapq.heapify(self.free)
        return gone


class PagedKVCache:
    """Block tables and lengths of B rows on one BlockPool: the Transformer's self-attention cache (serving).

    A decoding step is begin_step() (each row gets the slot of its next token), then each layer's
    layer(i).attend(q, k, v) (writes this step's k, v into the slots and attends through the tables), then
    end_step() (lengths + 1).
    """

    def __init__(self, pool: BlockPool, rows: int = 0):
        self.pool = pool
        self.tables: list[list[int]] = [[] for _ in range(rows)]
        self.lengths: list[int] = [0] * rows
        self._step: tuple[Tensor, Tensor, Tensor] | None = None  # slots (B,), tables (B, M), lengths (B,)

    def __len__(self) -> int:
        return len(self.tables)

    def tokens(self) -> int:
        """Key positions held (a block shared by several rows counted once per row)."""
        return sum(self.lengths)

    def reorder(self, index: Tensor) -> PagedKVCache:
        """Keep rows `index` (B',) in that order (repeats fork beams): references move, no K/V is copied."""
        rows = index.tolist()
        tables = [list(self.tables[r]) for r in rows]
        lengths = [self.lengths[r] for r in rows]
        for table in tables:
            for block in table:
                self.pool.retain(block)
        self.release()
        self.tables, self.lengths = tables, lengths
        return self

    def join(self, other: PagedKVCache, rows: tuple[int, int] | None = None) -> PagedKVCache:
        """This batch's rows, then other's (same pool); other hands its references over and is left empty."""
        if other.pool is not self.pool:
            raise ValueError("PagedKVCache.join: the caches use different block pools")
        self.tables += other.tables
        self.lengths += other.lengths
        other.tables, other.lengths = [], []
        return self

    def release(self) -> None:
        """Give back every block of every row (the rows leave)."""
        for table in self.tables:
            for block in table:
                self.pool.release(block)
        self.tables, self.lengths = [], []

    def begin_step(self) -> None:
        """Give every row a slot for its next token: a new block at a block boundary, and its own copy of a
        partly filled last block that another row shares."""
        pool, P = self.pool, self.pool.block_size
        slots, copy_src, copy_dst = [], [], []
        for table, length in zip(self.tables, self.lengths):
            offset = length % P
            if offset == 0:
                table.append(pool.allocate())
            elif pool.refs[table[-1]] > 1:  # a forked beam: copy-on-write of the shared partial block
                own = pool.allocate()
                copy_src.append(table[-1])
                copy_dst.append(own)
                pool.release(table[-1])  # still held by the row it is shared with: not freed
                table[-1] = own
            slots.append(table[-1] * P + offset)
        pool.copy(copy_src, copy_dst)
        width = max((len(t) for t in self.tables), default=0)
        padded = [t + [0] * (width - len(t)) for t in self.tables]
        device = pool.k[0].device
        self._step = (
            torch.tensor(slots, dtype=torch.long, device=device),  # (B,)
            torch.tensor(padded, dtype=torch.long, device=device).view(len(self.tables), width),  # (B, M)
            torch.tensor([n + 1 for n in self.lengths], dtype=torch.int32, device=device),  # (B,)
        )

    def end_step(self) -> None:
        self.lengths = [n + 1 for n in self.lengths]
        self._step = None

    def layer(self, i: int) -> PagedLayer:
        return PagedLayer(self, i)

    def memory(self) -> tuple[int, int]:
        """(bytes of the blocks these rows hold, bytes of the slots they fill); blocks counted once."""
        P = self.pool.block_size
        per_slot = self.pool.bytes_per_block() // P
        held = len({b for t in self.tables for b in t})
        return held * P * per_slot, (held * P - self.waste()) * per_slot

    def waste(self) -> int:
        """Slots allocated but unused in the blocks these rows hold (distinct blocks): < P per row."""
        P = self.pool.block_size
        held = {b for t in self.tables for b in t}
        used = {}
        for table, length in zip(self.tables, self.lengths):
            for j, block in enumerate(table):
                used[block] = max(used.get(block, 0), min(P, length - j * P))
        return len(held) * P - sum(used.values())


class PagedLayer:
    """One layer's view of a PagedKVCache: what MultiHeadAttention calls for self-attention."""

    def __init__(self, cache: PagedKVCache, layer: int):
        self.cache, self.index = cache, layer

    def attend(self, q: Tensor, k: Tensor, v: Tensor, backend: str = "auto") -> Tensor:
        """q, k, v (B,H,1,D) of this step -> out (B,H,1,D); k and v are written into the rows' slots first."""
        if self.cache._step is None:
            raise RuntimeError("PagedKVCache: call begin_step() before the layers attend")
        slots, tables, lengths = self.cache._step
        pool = self.cache.pool
        B, H, _, D = q.shape
        kp, vp = pool.k[self.index], pool.v[self.index]  # (N, P, H, D)
        kp.view(-1, H, D).index_copy_(0, slots, k[:, :, 0].to(kp.dtype))  # (B,H,D) into slots
        vp.view(-1, H, D).index_copy_(0, slots, v[:, :, 0].to(vp.dtype))
        return paged_attention(q, kp, vp, tables, lengths, backend=backend)


def gather_blocks(pool: Tensor, tables: Tensor) -> Tensor:
    """pool (N, P, H, D), tables (B, M) -> (B, H, M*P, D): each row's blocks laid end to end."""
    B, M = tables.shape
    _, P, H, D = pool.shape
    blocks = pool.index_select(0, tables.reshape(-1))  # (B*M, P, H, D); faster than pool[tables]
    return blocks.view(B, M * P, H, D).transpose(1, 2)  # (B,M,P,H,D) -> (B,H,S,D)


def paged_attention_reference(q: Tensor, k_pool: Tensor, v_pool: Tensor, tables: Tensor, lengths: Tensor,
                              scale: float | None = None, backend: str = "math") -> Tensor:  # fmt: skip
    """Gather + the attention core: q (B,H,1,D) over each row's first lengths[b] slots -> (B,H,1,D)."""
    k, v = gather_blocks(k_pool, tables), gather_blocks(v_pool, tables)  # (B,H,S,D)
    pad = torch.arange(k.shape[2], device=q.device)[None, :] >= lengths.to(q.device)[:, None]  # (B,S)
    out, _ = scaled_dot_product(q, k.to(q.dtype), v.to(q.dtype), key_padding_mask=pad, scale=scale,
                                backend=backend)  # fmt: skip
    return out


def paged_attention(q: Tensor, k_pool: Tensor, v_pool: Tensor, tables: Tensor, lengths: Tensor,
                    scale: float | None = None, backend: str = "auto") -> Tensor:  # fmt: skip
    """Decode-step attention through block tables: the Triton kernel where the core would pick Triton
    (CUDA, supported head dim and dtype), else gather + the chosen backend (sdpa or math)."""
    resolved = resolve_backend(backend, q.device, head_dim=q.shape[-1], value_dim=v_pool.shape[-1],
                               dtype=q.dtype)  # fmt: skip
    if resolved == "triton":
        from translate.attention.triton_paged import paged_decode_attention

        scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
        return paged_decode_attention(q, k_pool, v_pool, tables, lengths, scale)
    return paged_attention_reference(q, k_pool, v_pool, tables, lengths, scale, backend=resolved)
