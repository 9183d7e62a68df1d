"""Building blocks shared by the two 2014 models: a packed GRU encoder and the maxout deep output.

Legend: B batch, S source length, T target length, N hidden size, V vocabulary.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from translate.data.vocab import PAD_ID


def embeddings(
    src_vocab_size: int, tgt_vocab_size: int, dim: int, tie: bool, shared_vocab: bool
) -> tuple[nn.Embedding, nn.Embedding]:
    """The source and target embedding tables (PAD rows zero); one table for both when `tie` and the
    vocabulary is shared (same size)."""
    src = nn.Embedding(src_vocab_size, dim, padding_idx=PAD_ID)
    share = tie and shared_vocab and src_vocab_size == tgt_vocab_size
    return src, src if share else nn.Embedding(tgt_vocab_size, dim, padding_idx=PAD_ID)


class GRUEncoder(nn.Module):
    """Embeds and reads the source with a (bi)GRU over packed sequences: padding is never read."""

    def __init__(self, embedding: nn.Embedding, hidden_dim: int, bidirectional: bool, dropout: float = 0.0):
        super().__init__()
        self.embedding = embedding
        self.dropout = nn.Dropout(dropout)
        self.rnn = nn.GRU(embedding.embedding_dim, hidden_dim, batch_first=True, bidirectional=bidirectional)

    def forward(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """src (B,S) -> annotations (B,S,N*dirs) (zeros at PAD), final states (dirs,B,N), pad mask (B,S)."""
        pad_mask = src.eq(PAD_ID)
        lengths = (~pad_mask).sum(1).clamp_min(1).cpu()
        x = self.dropout(self.embedding(src))  # (B,S,Emb)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, h_n = self.rnn(packed)  # h_n: (dirs,B,N), last valid state of each direction
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))  # (B,S,N*dirs)
        return out, h_n, pad_mask


class MaxoutReadout(nn.Module):
    """Deep output: t = maxout(U_o s + V_o E y + C_o c) (pool 2), logits = W_o t (Bahdanau et al. A.2.2).

    With maxout=False the pooling is replaced by tanh (a plain one-hidden-layer readout).
    """

    def __init__(
        self,
        state_dim: int,
        emb_dim: int,
        ctx_dim: int,
        readout_dim: int,
        vocab_size: int,
        maxout: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.maxout = maxout
        self.pre = nn.Linear(state_dim + emb_dim + ctx_dim, readout_dim * (2 if maxout else 1))
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(readout_dim, vocab_size)

    def forward(self, s: torch.Tensor, y_emb: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """s (...,N), y_emb (...,Emb), c (...,C) -> logits (...,V); per step (B,.) or sentence (B,T,.)."""
        t = self.pre(torch.cat([s, y_emb, c], dim=-1))  # (...,2R)
        if self.maxout:
            t = t.unflatten(-1, (-1, 2)).amax(-1)  # (...,R): max over pairs of units
        else:
            t = torch.tanh(t)
        return self.out(self.dropout(t))
