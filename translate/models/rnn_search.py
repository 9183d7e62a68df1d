"""RNNsearch (Bahdanau et al. 2014): a bidirectional GRU encoder and a GRU decoder that attends.

At step i the decoder scores every annotation h_j = [h_j->; h_j<-] against its previous state s_{i-1}
(additive attention from the core, U h_j projected once per source in encode()), takes the context c_i,
predicts from the deep output t_i = maxout(U_o s_{i-1} + V_o E y_{i-1} + C_o c_i) (appendix A.2.2), then moves
to s_i = GRU([E y_{i-1}; c_i], s_{i-1}). The initial state is s_0 = tanh(W_s h_1<-), the backward encoder's
state at the first word. `attention` swaps the scoring function for one of Luong et al. (2015)'s.

Legend: B batch, S source length, T target length, N hidden size, A attention dim, V target vocabulary.
"""

from __future__ import annotations

import torch
from torch import nn

from translate.attention import AdditiveAttention, LuongAttention
from translate.attention.paged import BlockPool
from translate.models.interface import Seq2Seq, State
from translate.models.rnn_layers import GRUEncoder, MaxoutReadout, embeddings

# Luong's "dot" score needs the query and key sizes equal; here the state is N and the annotations 2N, so
# its learned-projection form "general" is the dot-product option.
ATTENTIONS = ("additive", "luong_general", "luong_concat")


def build_attention(kind: str, query_dim: int, key_dim: int, attention_dim: int, backend: str) -> nn.Module:
    if kind == "additive":
        return AdditiveAttention(query_dim, key_dim, attention_dim, backend=backend)
    if kind == "luong_general":
        return LuongAttention(query_dim, key_dim, score="general", backend=backend)
    if kind == "luong_concat":
        return LuongAttention(query_dim, key_dim, score="concat", backend=backend, attn_dim=attention_dim)
    raise ValueError(f"model.attention={kind!r}: expected one of {', '.join(ATTENTIONS)}")


class RNNsearch(Seq2Seq):
    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        shared_vocab: bool = False,
        emb_dim: int = 620,
        hidden_dim: int = 1000,
        readout_dim: int = 500,
        attention: str = "additive",
        attention_dim: int = 1000,
        maxout: bool = True,
        dropout: float = 0.0,
        tie_embeddings: bool = False,
        attention_backend: str = "auto",
    ):
        """The defaults are the paper's (appendix A.2, B): embeddings 620, GRU 1000 per direction, maxout 500,
        additive attention of size 1000, no dropout, separate vocabularies; conf/model/*.yaml mark what they
        change ("paper: ...").

        tie_embeddings shares the source and target embedding table when the vocabulary is shared.

        attention: additive | luong_general | luong_concat; attention_dim is the hidden size A of the
        additive and concat scores (unused by luong_general).
        """
        super().__init__()
        self.src_vocab_size, self.tgt_vocab_size = src_vocab_size, tgt_vocab_size
        self.attention_kind = attention
        src_emb, self.tgt_embedding = embeddings(src_vocab_size, tgt_vocab_size, emb_dim, tie_embeddings,
                                                 shared_vocab)  # fmt: skip
        self.encoder = GRUEncoder(src_emb, hidden_dim, bidirectional=True, dropout=dropout)
        self.init_state = nn.Linear(hidden_dim, hidden_dim)  # s_0 = tanh(W_s h_1<-)
        self.attention = build_attention(
            attention, hidden_dim, 2 * hidden_dim, attention_dim, attention_backend
        )
        self.cell = nn.GRUCell(emb_dim + 2 * hidden_dim, hidden_dim)
        self.dropout = nn.Dropout(dropout)
        self.readout = MaxoutReadout(
            hidden_dim, emb_dim, 2 * hidden_dim, readout_dim, tgt_vocab_size, maxout, dropout
        )

    def encode(self, src: torch.Tensor, paged: BlockPool | None = None) -> State:
        self.check_paged(paged)  # the decoder is a GRU: no self-attention cache to page
        annotations, h_n, pad_mask = self.encoder(src)  # (B,S,2N), (2,B,N), (B,S)
        return {
            "annotations": annotations,
            "projected": self.attention.project_keys(annotations),  # U h: (B,S,A)
            "src_pad_mask": pad_mask,
            "hidden": torch.tanh(self.init_state(h_n[1])),  # h_n[1]: backward GRU after reading word 1
        }

    def _attend(
        self, s: torch.Tensor, state: State, need_weights: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """s_{i-1} (B,N) -> context c_i (B,2N), weights (B,S) | None."""
        return self.attention(
            s,
            state["annotations"],
            key_padding_mask=state["src_pad_mask"],
            projected=state["projected"],
            need_weights=need_weights,
        )

    def _teacher_forced(
        self, src: torch.Tensor, tgt_in: torch.Tensor, need_weights: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        state = self.encode(src)
        y = self.dropout(self.tgt_embedding(tgt_in))  # (B,T,Emb)
        s_prev, contexts, weights = [], [], []
        s = state["hidden"]
        for t in range(tgt_in.size(1)):  # the recurrence: c_t depends on s_{t-1}
            c, w = self._attend(s, state, need_weights)  # (B,2N), (B,S) | None
            s_prev.append(s)
            contexts.append(c)
            weights.append(w)
            s = self.cell(torch.cat([y[:, t], c.to(y.dtype)], -1), s).to(s.dtype)
        # The deep output for all steps in one go: (B,T,N), (B,T,Emb), (B,T,2N) -> (B,T,V).
        logits = self.readout(torch.stack(s_prev, 1), y, torch.stack(contexts, 1).to(y.dtype))
        return logits, torch.stack(weights, 1) if need_weights else None

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        return self._teacher_forced(src, tgt_in, need_weights=False)[0]

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        y = self.dropout(self.tgt_embedding(tokens))  # (B,Emb)
        s_prev = state["hidden"]
        c, _ = self._attend(s_prev, state, need_weights=False)  # (B,2N)
        logits = self.readout(s_prev, y, c.to(y.dtype))  # (B,V)
        s = self.cell(torch.cat([y, c.to(y.dtype)], -1), s_prev).to(s_prev.dtype)
        return logits, {**state, "hidden": s}

    def attention_weights(self, src: torch.Tensor, tgt_in: torch.Tensor) -> dict[str, torch.Tensor]:
        return {self.attention_kind: self._teacher_forced(src, tgt_in, need_weights=True)[1]}  # (B,T,S)
