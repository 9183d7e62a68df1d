"""Token embeddings and position encodings for the Transformer (Vaswani et al. 2017, section 3.4-3.5).

Legend: B batch, T sequence length, E model dim, V vocabulary.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from translate.data.vocab import PAD_ID


class ScaledEmbedding(nn.Embedding):
    """Token embedding multiplied by sqrt(E), so it is not drowned by the unit-scale position encoding
    (scale=False: unscaled, as Marian models with scale_embedding false)."""

    def __init__(self, num_embeddings: int, embed_dim: int, scale: bool = True):
        super().__init__(num_embeddings, embed_dim, padding_idx=PAD_ID)
        nn.init.normal_(self.weight, mean=0.0, std=embed_dim**-0.5)
        with torch.no_grad():
            self.weight[PAD_ID].zero_()
        self.scale = math.sqrt(embed_dim) if scale else 1.0

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return super().forward(ids) * self.scale  # (B,T) -> (B,T,E)


def sinusoid_table(num_positions: int, embed_dim: int, halves: bool = False) -> torch.Tensor:
    """PE(pos, 2i) = sin(pos / 10000^(2i/E)), PE(pos, 2i+1) = cos(...): (num_positions, E).

    halves=True: the same sines and cosines laid out as [all sines; all cosines] (sine i at dimension i,
    cosine i at E/2 + i), the layout of Marian / OPUS-MT (transformers' MarianSinusoidalPositionalEmbedding).
    """
    pos = torch.arange(num_positions, dtype=torch.float32).unsqueeze(1)  # (P,1)
    inv_freq = torch.exp(
        torch.arange(0, embed_dim, 2, dtype=torch.float32) * (-math.log(10000.0) / embed_dim)
    )
    table = torch.zeros(num_positions, embed_dim)
    if halves:  # computed in float64 as transformers does, then rounded: Marian's table to the last bit
        half = (embed_dim + 1) // 2  # sines (one per frequency), then the cosines
        exponent = torch.arange(0, embed_dim, 2, dtype=torch.float64) / embed_dim
        angle = pos.double() / torch.pow(10000.0, exponent)  # (P, ceil(E/2))
        table[:, :half] = torch.sin(angle).float()
        table[:, half:] = torch.cos(angle[:, : embed_dim - half]).float()
        return table
    table[:, 0::2] = torch.sin(pos * inv_freq)
    table[:, 1::2] = torch.cos(pos * inv_freq[: embed_dim // 2])
    return table


class SinusoidalPositions(nn.Module):
    """Fixed sinusoids; the table grows on demand, so any length works (no parameters). halves: the
    [sines; cosines] layout instead of interleaved (sinusoid_table)."""

    def __init__(self, embed_dim: int, max_positions: int = 1024, halves: bool = False):
        super().__init__()
        self.embed_dim, self.halves = embed_dim, halves
        self.register_buffer("table", sinusoid_table(max_positions, embed_dim, halves), persistent=False)

    def forward(self, length: int, offset: int = 0) -> torch.Tensor:
        """Encodings of positions offset .. offset+length-1: (length, E)."""
        end = offset + length
        if end > self.table.size(0):
            self.table = sinusoid_table(max(end, 2 * self.table.size(0)), self.embed_dim, self.halves).to(
                self.table.device
            )
        return self.table[offset:end]

    def at(self, positions: torch.Tensor) -> torch.Tensor:
        """Encodings of one position per row: positions (B,) -> (B, E)."""
        self.forward(1, int(positions.max()) if positions.numel() else 0)  # grow the table if needed
        return self.table[positions]


class LearnedPositions(nn.Module):
    """Learned position embeddings (the paper's variant in table 3, row E); limited to max_positions."""

    def __init__(self, embed_dim: int, max_positions: int = 1024):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(max_positions, embed_dim) * embed_dim**-0.5)

    def forward(self, length: int, offset: int = 0) -> torch.Tensor:
        end = offset + length
        if end > self.weight.size(0):
            raise ValueError(
                f"position {end - 1} beyond max_positions={self.weight.size(0)} (model.max_positions)"
            )
        return self.weight[offset:end]

    def at(self, positions: torch.Tensor) -> torch.Tensor:
        """Embeddings of one position per row: positions (B,) -> (B, E)."""
        if positions.numel():
            self.forward(1, int(positions.max()))  # the same error beyond max_positions
        return self.weight[positions]


POSITIONS = ("sinusoidal", "sinusoidal_halves", "learned")


def build_positions(kind: str, embed_dim: int, max_positions: int) -> nn.Module:
    """sinusoidal (the paper's interleaved sines and cosines), sinusoidal_halves (the same values as
    [sines; cosines], Marian's layout) or learned."""
    if kind in ("sinusoidal", "sinusoidal_halves"):
        return SinusoidalPositions(embed_dim, max_positions, halves=kind == "sinusoidal_halves")
    if kind == "learned":
        return LearnedPositions(embed_dim, max_positions)
    raise ValueError(f"model.positions={kind!r}: expected one of {', '.join(POSITIONS)}")
