"""The one interface every translation model speaks, so training and search never ask which model they drive.

Required: forward (teacher forcing), encode, step, attention_weights. Optional capabilities are declared here
with the answer of a model that lacks them, and a model that has one overrides it:
  new_block_pool(block_size) -> a BlockPool, or None: no self-attention cache to page (continuous batching
                               then keeps each row's state as it is); with a pool, encode(src, paged=pool)
  kv_memory(state)           -> the self-attention cache's (allocated, used) bytes; (0, 0) without one
  restrict_output(state, vocab) -> the state whose step() returns logits over the target ids `vocab` (Vs,)
                               only (a vocabulary shortlist, search/shortlist.py), or None: it cannot
  max_positions              -> the positions one sequence may take; None = any length
  ct2_spec                   -> the CTranslate2 model spec the architecture maps onto (engines/ct2_export.py);
                               None: it cannot be exported
  flops_per_target_token(S, T) -> forward + backward matmul FLOPs per target token of an S/T sentence pair
  linear_shapes()            -> {(out, in): count} of the Linear products one pair passes through; with the
                               count, training logs its share of the measured matmul peak
                               (training/flops.py); None for both: not counted
Search, the service and the export read these, never the class: a new model class that implements the
required methods gets greedy, beam, sampling and continuous batching, and the paged cache and the export
where it declares them.

Legend: B batch, S source length, T target length, V target vocabulary.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import torch
from torch import nn

from translate.attention.paged import BlockPool

State = dict[str, Any]


def reorder(value: Any, index: torch.Tensor) -> Any:
    """Select rows `index` (B',) on the batch dimension (dim 0) of every tensor or cache in a decoder state.

    Tensors, objects with a `reorder(index)` method (the attention core's KVCache), and lists, tuples
    and dicts of them are reordered; anything else (a step counter) is batch-independent and passes through.
    """
    if isinstance(value, torch.Tensor):
        return value.index_select(0, index)
    if hasattr(value, "reorder"):
        out = value.reorder(index)
        return value if out is None else out
    if isinstance(value, dict):
        return {k: reorder(v, index) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(reorder(v, index) for v in value)
    return value


def batch_size(value: Any) -> int | None:
    """Rows of a decoder state: dim 0 of its first tensor (None when it holds none)."""
    if isinstance(value, torch.Tensor):
        return value.shape[0]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    for v in items:
        n = batch_size(v)
        if n is not None:
            return n
    return None


def concat(a: Any, b: Any, rows: tuple[int, int]) -> Any:
    """Rows of decoder state a, then rows of b (rows = their batch sizes): sentences joining a running batch.

    Tensors are concatenated on dim 0 after padding every other dim to the larger size: bool tensors (in a
    state these are key padding masks) with True = ignore, others with 0, so padded source positions are
    masked. Objects with a `join(other, rows)` method (KVCache, PagedKVCache) join themselves; lists, tuples
    and dicts are walked; other values (a step counter) must be equal on both sides.
    """
    if isinstance(a, torch.Tensor):
        size = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:])]
        out = a.new_full((a.shape[0] + b.shape[0], *size), True if a.dtype == torch.bool else 0)
        out[tuple(slice(0, n) for n in a.shape)] = a  # each side copied once, into place
        out[(slice(a.shape[0], None), *(slice(0, n) for n in b.shape[1:]))] = b
        return out
    if hasattr(a, "join"):
        return a.join(b, rows)
    if isinstance(a, dict):
        return {k: concat(a[k], b[k], rows) for k in a}
    if isinstance(a, (list, tuple)):
        return type(a)(concat(x, y, rows) for x, y in zip(a, b))
    if a != b:
        raise ValueError(f"cannot join decoder states that differ in {a!r} and {b!r}")
    return a


class Seq2Seq(nn.Module, abc.ABC):
    """Encoder-decoder over token ids; padding is PAD_ID and every mask is derived from it."""

    src_vocab_size: int
    tgt_vocab_size: int
    max_positions: int | None = None  # positions one sequence (source or target) may take; None = any length
    ct2_spec: ClassVar[str | None] = None  # the CTranslate2 spec it exports to ("TransformerSpec"), or None

    @abc.abstractmethod
    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: src (B,S), tgt_in (B,T) -> logits (B,T,V)."""

    @abc.abstractmethod
    def encode(self, src: torch.Tensor, paged: BlockPool | None = None) -> State:
        """src (B,S) -> decoder state holding everything step() needs (batch on dim 0 of every tensor).

        `paged`: a pool from new_block_pool() to keep the self-attention cache in; only a model whose
        new_block_pool returns one is given one (check_paged refuses it otherwise)."""

    @abc.abstractmethod
    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One incremental decoding step: previous tokens (B,) -> logits (B,V) and the next state.

        Caches inside `state` may be updated in place: always continue from the returned state.
        """

    def reorder_state(self, state: State, index: torch.Tensor) -> State:
        """Keep/duplicate/permute rows: index (B',) into the current B rows (beam search, finished rows)."""
        return reorder(state, index)

    def join_states(self, state: State, other: State) -> State:
        """The rows of `state`, then those of `other` (e.g. sentences joining a running batch between steps);
        source-length dimensions are padded and masked."""
        return concat(state, other, (batch_size(state) or 0, batch_size(other) or 0))

    def new_block_pool(self, block_size: int, num_blocks: int = 64) -> BlockPool | None:
        """A BlockPool for a paged self-attention cache of this model; None: it keeps no such cache."""
        return None

    def kv_memory(self, state: State) -> tuple[int, int]:
        """(bytes allocated, bytes used) by the self-attention cache of a decoding state; (0, 0): none."""
        return (0, 0)

    def restrict_output(self, state: State, vocab: torch.Tensor) -> State | None:
        """The state with the output projection cut to the target ids `vocab` (Vs,): step() then returns
        logits (B, Vs) in vocab's order. None: this model cannot (the search then refuses a shortlist)."""
        return None

    def flops_per_target_token(self, src_len: float, tgt_len: float) -> float | None:
        """Forward + backward FLOPs per target token of a src_len / tgt_len pair (2 per multiply-add);
        None: this model does not count them (training then logs no utilisation)."""
        return None

    def linear_shapes(self) -> dict[tuple[int, int], int] | None:
        """(out, in) -> how many Linear products of that shape one sentence pair passes through: what the
        matmul peak is timed at (training/flops.py); None with flops_per_target_token."""
        return None

    def check_paged(self, paged: BlockPool | None) -> None:
        """For encode() of a model without a paged cache: a pool given anyway is refused, by name."""
        if paged is not None:
            raise ValueError(f"{type(self).__name__} keeps no self-attention cache to page "
                             "(its new_block_pool() is None): encode it without paged=")  # fmt: skip

    @abc.abstractmethod
    def attention_weights(self, src: torch.Tensor, tgt_in: torch.Tensor) -> dict[str, torch.Tensor]:
        """Teacher-forced attention maps for plots, e.g. {"additive": (B,T,S)}; {} without attention."""

    def num_parameters(self) -> int:
        """Distinct parameters (tied weights counted once)."""
        return sum(p.numel() for p in self.parameters())

    def describe(self) -> str:
        """One line for logs: class, size and vocabularies."""
        n = self.num_parameters()
        return (
            f"{type(self).__name__}: {n:,} parameters ({n / 1e6:.2f}M), "
            f"vocab src {self.src_vocab_size} / tgt {self.tgt_vocab_size}"
        )
