"""Key/value cache for incremental decoding: one per attention layer, held in the decoder state.

Legend: B batch, H heads, S cached keys, T new steps, D head dim.
Self-attention appends each step's keys/values; cross-attention stores the projected source once.
Self-attention keys/values live in preallocated buffers (B,H,capacity,D) that grow by doubling: a step
writes its keys in place (no copy of the history), and k, v are views of the first S positions. Beam search
and dropping finished rows both go through reorder(index), one index_select of the S cached positions into a
fresh buffer of the same capacity; rows joining a running batch go
through join(other), which pads the shorter side with masked keys (the mask, not the key order, says what
a row may see), and reorder drops leading key positions that no remaining row may see.
"""

from __future__ import annotations

import torch
from torch import Tensor


class KVCache:
    """k, v (B,H,S,D) and key_padding_mask (B,S) | None (True = ignore); empty until the first call."""

    MIN_CAPACITY = 16  # key positions a buffer holds when appending first needs room

    def __init__(self) -> None:
        self._k: Tensor | None = None  # (B,H,capacity,D); positions >= S unused
        self._v: Tensor | None = None
        self._n = 0  # S: positions in use
        self.key_padding_mask: Tensor | None = None
        self.joined = False  # join() padded rows in front: reorder then trims what no row may see

    @property
    def k(self) -> Tensor | None:
        """(B,H,S,D) the cached keys: a view of the buffer."""
        return None if self._k is None else self._k[:, :, : self._n]

    @property
    def v(self) -> Tensor | None:
        return None if self._v is None else self._v[:, :, : self._n]

    @property
    def capacity(self) -> int:
        return 0 if self._k is None else self._k.shape[2]

    def __len__(self) -> int:
        """Number of cached key positions S (the next step's position, for positional encodings)."""
        return self._n

    def store(self, k: Tensor, v: Tensor, key_padding_mask: Tensor | None = None) -> None:
        """Set the whole cache at once (cross-attention: the projected source, computed once)."""
        self._k, self._v, self._n, self.key_padding_mask = k, v, k.shape[2], key_padding_mask

    def _grow(self, need: int) -> None:
        """Room for `need` positions: a buffer of twice the capacity (at least need); the history copied."""
        cap = max(need, 2 * self.capacity, self.MIN_CAPACITY)
        B, H, _, D = self._k.shape
        k, v = self._k.new_empty(B, H, cap, D), self._v.new_empty(B, H, cap, D)
        k[:, :, : self._n] = self.k
        v[:, :, : self._n] = self.v
        self._k, self._v = k, v

    def append(
        self, k: Tensor, v: Tensor, key_padding_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Append k, v (B,H,T,D) and their mask (B,T) | None; return the full k, v (B,H,S+T,D) and mask."""
        if self._k is None:  # (not self.k: that slices the buffer, a few us per call in every decoding step)
            self.store(k, v, key_padding_mask)
            return k, v, key_padding_mask
        if self._k.shape[0] != k.shape[0]:
            raise ValueError(f"KVCache.append: {k.shape[0]} rows for a cache of {self._k.shape[0]}")
        old_mask = self.key_padding_mask
        if old_mask is not None or key_padding_mask is not None:
            batch, steps = k.shape[0], k.shape[-2]
            if old_mask is None:
                old_mask = torch.zeros(batch, len(self), dtype=torch.bool, device=k.device)
            if key_padding_mask is None:
                key_padding_mask = torch.zeros(batch, steps, dtype=torch.bool, device=k.device)
            key_padding_mask = torch.cat([old_mask, key_padding_mask], dim=1)  # (B, S+T)
        n, T = self._n, k.shape[-2]
        if torch.is_grad_enabled() and (k.requires_grad or self._k.requires_grad):  # autograd: no in-place
            self.store(torch.cat([self.k, k], dim=-2), torch.cat([self.v, v], dim=-2), key_padding_mask)
            return self.k, self.v, self.key_padding_mask
        if n + T > self.capacity:
            self._grow(n + T)
        self._k[:, :, n : n + T] = k  # in place: the history is not copied
        self._v[:, :, n : n + T] = v
        self._n = n + T
        self.key_padding_mask = key_padding_mask
        return self.k, self.v, self.key_padding_mask

    def memory(self) -> tuple[int, int]:
        """(bytes allocated, bytes holding keys/values a row may see) of k and v; allocated counts the
        buffers' spare capacity."""
        if self._k is None:
            return 0, 0
        per_key = 2 * self._k.shape[1] * self._k.shape[3] * self._k.element_size()  # k and v, H x D each
        mask = self.key_padding_mask
        seen = self._k.shape[0] * self._n if mask is None else int((~mask).sum())
        return self._k.shape[0] * self.capacity * per_key, seen * per_key

    def reorder(self, index: Tensor) -> KVCache:
        """Select batch rows in place (beam search reordering, finished rows dropped); returns self.

        index (B',) LongTensor of rows to keep, in their new order; B' may differ from B.
        """
        if self._k is not None:
            index = index.to(self._k.device)
            B, H, cap, D = self._k.shape
            if self._k.requires_grad or self._v.requires_grad:  # autograd: a plain copy of the S positions
                self._k, self._v = self.k.index_select(0, index), self.v.index_select(0, index)
            else:
                k, v = self._k.new_empty(len(index), H, cap, D), self._v.new_empty(len(index), H, cap, D)
                torch.index_select(self.k, 0, index, out=k[:, :, : self._n])  # the S used positions, once
                torch.index_select(self.v, 0, index, out=v[:, :, : self._n])
                self._k, self._v = k, v
        if self.key_padding_mask is not None:
            mask = self.key_padding_mask
            self.key_padding_mask = mask.index_select(0, index.to(mask.device))
            if self.joined:  # (a host sync per call: offline decoding never joins, so never pays it)
                self._drop_masked_prefix()
        return self

    def join(self, other: KVCache, rows: tuple[int, int]) -> KVCache:
        """This cache's rows, then other's (rows = their batch sizes: an empty cache has no tensor to tell);
        the shorter side is padded in front with masked zero keys, so the newest keys stay last. -> self."""
        if other.k is None and self.k is None:
            return self
        ref = self.k if self.k is not None else other.k
        parts = []
        for cache, n in zip((self, other), rows):
            if cache.k is None:  # rows that have cached nothing yet: (B,H,0,D)
                empty = ref.new_zeros(n, ref.shape[1], 0, ref.shape[3])
                parts.append((empty, empty, None))
            else:
                parts.append((cache.k, cache.v, cache.key_padding_mask))
        S = max(k.shape[2] for k, _, _ in parts)
        B = sum(k.shape[0] for k, _, _ in parts)
        k_out = ref.new_empty(B, ref.shape[1], S, ref.shape[3])  # (B,H,S,D): each part copied once, in place
        v_out = ref.new_empty(B, ref.shape[1], S, ref.shape[3])
        mask_out = torch.ones(B, S, dtype=torch.bool, device=ref.device)
        row = 0
        for k, v, mask in parts:
            b, n = k.shape[0], k.shape[2]
            for out, x in ((k_out, k), (v_out, v)):
                out[row : row + b, :, : S - n] = 0.0  # the padding (masked, but never garbage)
                out[row : row + b, :, S - n :] = x
            mask_out[row : row + b, S - n :] = False if mask is None else mask
            row += b
        self.store(k_out, v_out, mask_out)
        self.joined = True
        self._drop_masked_prefix()
        return self

    def _drop_masked_prefix(self) -> None:
        """Leading key positions that every row masks are dead weight (rows that left): cut them off."""
        mask = self.key_padding_mask
        if mask is None or mask.shape[0] == 0 or not mask[:, 0].all():
            return
        dead = int(mask.all(0).long().cumprod(0).sum())  # length of the all-masked prefix
        self._k, self._v = self._k[:, :, dead:], self._v[:, :, dead:]  # views: the capacity shrinks by `dead`
        self._n -= dead
        self.key_padding_mask = mask[:, dead:]

