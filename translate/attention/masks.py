"""Attention masks: one boolean "may attend" tensor built from key padding, causality and a window.

Legend: B batch, H heads, T queries, S keys.
Positions are aligned bottom-right: query i sits at absolute position i + (S - T), so a one-token query
against a cache of S keys is the newest position and sees every cached key.
"""

from __future__ import annotations

import torch
from torch import Tensor


def check_key_padding_mask(key_padding_mask: Tensor | None, batch: int, keys: int) -> None:
    """Fail early, in one line, on a mask that would silently broadcast to the wrong thing."""
    if key_padding_mask is None:
        return
    if key_padding_mask.dtype != torch.bool:
        raise TypeError(f"key_padding_mask must be bool (True = ignore), got {key_padding_mask.dtype}")
    if tuple(key_padding_mask.shape) != (batch, keys):
        got = tuple(key_padding_mask.shape)
        raise ValueError(f"key_padding_mask must have shape (B, S) = ({batch}, {keys}), got {got}")


def check_window(window: int | None) -> None:
    if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 0):
        raise ValueError(f"window must be a non-negative int or None, got {window!r}")


def attention_mask(
    queries: int,
    keys: int,
    key_padding_mask: Tensor | None = None,
    causal: bool = False,
    window: int | None = None,
    device: torch.device | str | None = None,
) -> Tensor | None:
    """Return allowed (B|1, 1, T, S) bool, True where query t may attend to key s; None if nothing is masked.

    causal: key s <= position(t); window w: |s - position(t)| <= w; key_padding_mask (B, S): True = ignore.
    """
    check_window(window)
    if key_padding_mask is not None:
        device = key_padding_mask.device
    allowed = None
    if causal or window is not None:
        # Broadcast comparisons build the (T, S) bools directly, with no (T, S) integer tensor.
        q_pos = torch.arange(queries, device=device)[:, None] + (keys - queries)  # (T, 1) absolute positions
        k_pos = torch.arange(keys, device=device)[None, :]  # (1, S)
        if causal:
            allowed = k_pos <= q_pos  # (T, S)
        if window is not None:
            band = (k_pos >= q_pos - window) & (k_pos <= q_pos + window)  # (T, S)
            allowed = band if allowed is None else allowed & band
        allowed = allowed[None, None]  # (1, 1, T, S)
    if key_padding_mask is not None:
        keep = ~key_padding_mask[:, None, None, :]  # (B, 1, 1, S)
        allowed = keep if allowed is None else allowed & keep
    return allowed


def lengths_from_padding_mask(key_padding_mask: Tensor) -> Tensor | None:
    """(B, S) right-padded mask -> key lengths (B,) int32; None when some row is not right-padded.

    Fused kernels take per-sequence lengths, so they can only serve masks of the form [F F F T T].
    """
    keys = key_padding_mask.shape[-1]
    lengths = (~key_padding_mask).sum(-1)  # (B,)
    right_padded = torch.arange(keys, device=key_padding_mask.device)[None, :] >= lengths[:, None]  # (B, S)
    if not torch.equal(right_padded, key_padding_mask):
        return None
    return lengths.to(torch.int32)
