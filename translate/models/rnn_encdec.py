"""RNN Encoder-Decoder (Cho et al. 2014): the whole source squeezed into one fixed-length vector c.

The baseline of the historical comparison; without attention it degrades on long sentences
(Bahdanau et al. 2014, figure 2). Encoder: GRU, c = tanh(V h_S). Decoder: GRU with input [E y_{t-1}; c]
at every step and initial state tanh(V' c); output from [s_t; E y_{t-1}; c] through a maxout layer.

Legend: B batch, S source length, T target length, N hidden size, V target vocabulary.
"""

from __future__ import annotations

import torch
from torch import nn

from translate.attention.paged import BlockPool
from translate.models.interface import Seq2Seq, State
from translate.models.rnn_layers import GRUEncoder, MaxoutReadout, embeddings


class RNNencdec(Seq2Seq):
    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        shared_vocab: bool = False,
        emb_dim: int = 620,
        hidden_dim: int = 1000,
        readout_dim: int = 500,
        maxout: bool = True,
        dropout: float = 0.0,
        tie_embeddings: bool = False,
    ):
        """The defaults are the size Bahdanau et al. (2014) compare (Cho et al.'s architecture): embeddings
        620, GRU 1000, maxout 500, no dropout, separate vocabularies; conf/model/*.yaml mark what they change
        ("paper: ...").

        tie_embeddings shares the source and target embedding table when the vocabulary is shared.
        No attention, so no attention_backend: conf/model/rnnencdec*.yaml do not name one.
        """
        super().__init__()
        self.src_vocab_size, self.tgt_vocab_size = src_vocab_size, tgt_vocab_size
        src_emb, self.tgt_embedding = embeddings(src_vocab_size, tgt_vocab_size, emb_dim, tie_embeddings,
                                                 shared_vocab)  # fmt: skip
        self.encoder = GRUEncoder(src_emb, hidden_dim, bidirectional=False, dropout=dropout)
        self.summary = nn.Linear(hidden_dim, hidden_dim)  # c = tanh(V h_S)
        self.init_state = nn.Linear(hidden_dim, hidden_dim)  # s_0 = tanh(V' c)
        self.decoder = nn.GRU(emb_dim + hidden_dim, hidden_dim, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.readout = MaxoutReadout(
            hidden_dim, emb_dim, hidden_dim, readout_dim, tgt_vocab_size, maxout, dropout
        )

    def encode(self, src: torch.Tensor, paged: BlockPool | None = None) -> State:
        self.check_paged(paged)  # the decoder is a GRU: no self-attention cache to page
        _, h_n, _ = self.encoder(src)  # h_n (1,B,N)
        c = torch.tanh(self.summary(h_n[-1]))  # (B,N)
        return {"context": c, "hidden": torch.tanh(self.init_state(c))}

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        state = self.encode(src)
        c = state["context"]
        y = self.dropout(self.tgt_embedding(tgt_in))  # (B,T,Emb)
        c_t = c.unsqueeze(1).expand(-1, tgt_in.size(1), -1)  # (B,T,N): the same summary at every step
        s, _ = self.decoder(torch.cat([y, c_t], -1), state["hidden"].unsqueeze(0).contiguous())  # (B,T,N)
        return self.readout(s, y, c_t)  # (B,T,V)

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        c = state["context"]
        y = self.dropout(self.tgt_embedding(tokens))  # (B,Emb)
        s, _ = self.decoder(torch.cat([y, c], -1).unsqueeze(1), state["hidden"].unsqueeze(0).contiguous())
        s = s.squeeze(1)  # (B,N)
        return self.readout(s, y, c), {"context": c, "hidden": s}

    def attention_weights(self, src: torch.Tensor, tgt_in: torch.Tensor) -> dict[str, torch.Tensor]:
        return {}
