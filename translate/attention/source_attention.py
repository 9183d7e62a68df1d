"""SourceAttention: what the RNN decoders' attention modules share (Bahdanau's additive, Luong's scores).

A recurrent decoder attends over the encoder annotations (B,S,Dk), which are both keys and values, either
one step at a time (query (B,Dq), while decoding) or for all steps at once (query (B,T,Dq), teacher forcing).
The key-side projection does not depend on the step, so project_keys() runs it once per source sentence and
every step passes it back as projected=. Subclasses define project_keys() and attend() for (B,T,Dq) queries.
"""

from __future__ import annotations

import abc

from torch import Tensor, nn

from translate.attention.backend import BACKENDS, additive_attention


class SourceAttention(nn.Module, abc.ABC):
    def __init__(self, backend: str) -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"attention backend must be one of {'|'.join(BACKENDS)}, got {backend!r}")
        self.backend = backend

    @abc.abstractmethod
    def project_keys(self, keys: Tensor) -> Tensor | None:
        """keys (B,S,Dk) -> their step-independent projection (or None when there is none)."""

    @abc.abstractmethod
    def attend(
        self, query: Tensor, keys: Tensor, projected: Tensor | None, key_padding_mask: Tensor | None,
        need_weights: bool,
    ) -> tuple[Tensor, Tensor | None]:  # fmt: skip
        """query (B,T,Dq) -> (context (B,T,Dk), weights (B,T,S) | None)."""

    def additive(
        self, query: Tensor, keys: Tensor, projected: Tensor, key_padding_mask: Tensor | None,
        need_weights: bool,
    ) -> tuple[Tensor, Tensor | None]:  # fmt: skip
        """The additive score v^T tanh(W q + projected) through the core (Bahdanau's, and Luong's concat):
        for a subclass with `query_proj` (W) and `v`; query (B,T,Dq), projected (B,S,A) -> as attend()."""
        return additive_attention(
            self.query_proj(query),  # (B,T,A)
            projected,  # (B,S,A)
            self.v,
            keys,
            key_padding_mask=key_padding_mask,
            backend=self.backend,
            need_weights=need_weights,
        )  # (B,T,Dk), (B,T,S) | None

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        *,
        key_padding_mask: Tensor | None = None,
        projected: Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """query (B,Dq) or (B,T,Dq), keys (B,S,Dk) -> (context (B,[T,]Dk), weights (B,[T,]S) | None)."""
        one_step = query.dim() == 2
        if one_step:
            query = query[:, None]  # (B,Dq) -> (B,1,Dq)
        projected = self.project_keys(keys) if projected is None else projected
        context, weights = self.attend(query, keys, projected, key_padding_mask, need_weights)  # (B,T,Dk)
        if one_step:
            context = context[:, 0]
            weights = None if weights is None else weights[:, 0]
        return context, weights
