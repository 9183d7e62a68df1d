"""Key/value cache for incremental decoding: one per attention layer, held in the decoder state.

Legend: B batch, H heads, S cached keys, T new steps, D head dim.
Self-attention appends each step's keys/values; cross-attention stores the projected source once.
Beam search and dropping finished rows both go through reorder(index).
"""

from __future__ import annotations

import torch
from torch import Tensor


class KVCache:
    """k, v (B,H,S,D) and key_padding_mask (B,S) | None (True = ignore); empty until the first call."""

    def __init__(self) -> None:
        self.k: Tensor | None = None
        self.v: Tensor | None = None
        self.key_padding_mask: Tensor | None = None

    @property
    def is_empty(self) -> bool:
        return self.k is None

    def __len__(self) -> int:
        """Number of cached key positions S (the next step's position, for positional encodings)."""
        return 0 if self.k is None else self.k.shape[-2]

    def store(self, k: Tensor, v: Tensor, key_padding_mask: Tensor | None = None) -> None:
        """Set the whole cache at once (cross-attention: the projected source, computed once)."""
        self.k, self.v, self.key_padding_mask = k, v, key_padding_mask

    def append(
        self, k: Tensor, v: Tensor, key_padding_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Append k, v (B,H,T,D) and their mask (B,T) | None; return the full k, v (B,H,S+T,D) and mask."""
        if self.k is None:
            self.store(k, v, key_padding_mask)
            return k, v, key_padding_mask
        old_mask = self.key_padding_mask
        if old_mask is not None or key_padding_mask is not None:
            batch, steps = k.shape[0], k.shape[-2]
            if old_mask is None:
                old_mask = torch.zeros(batch, len(self), dtype=torch.bool, device=k.device)
            if key_padding_mask is None:
                key_padding_mask = torch.zeros(batch, steps, dtype=torch.bool, device=k.device)
            key_padding_mask = torch.cat([old_mask, key_padding_mask], dim=1)  # (B, S+T)
        self.store(torch.cat([self.k, k], dim=-2), torch.cat([self.v, v], dim=-2), key_padding_mask)
        return self.k, self.v, self.key_padding_mask

    def reorder(self, index: Tensor) -> KVCache:
        """Select batch rows in place (beam search reordering, finished rows dropped); returns self.

        index (B',) LongTensor of rows to keep, in their new order; B' may differ from B.
        """
        if self.k is not None:
            index = index.to(self.k.device)
            self.k = self.k.index_select(0, index)
            self.v = self.v.index_select(0, index)
        if self.key_padding_mask is not None:
            mask = self.key_padding_mask
            self.key_padding_mask = mask.index_select(0, index.to(mask.device))
        return self
