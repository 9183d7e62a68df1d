"""The Transformer encoder-decoder (Vaswani et al. 2017), on the attention core.

Teacher forcing runs the decoder's self-attention with the causal fast path over the whole target; step()
decodes one token at a time with a KVCache per layer: self-attention appends, cross-attention keys/values
are projected once in encode() (MultiHeadAttention.cache_memory), so the decoding state holds no memory.
reorder_state copies the source side (the cross-attention caches) only when some row comes to read another
source, so beam search's reorders within a sentence's beams leave it alone. For serving, encode(src,
paged=pool) keeps the self-attention keys/values in a PagedKVCache instead (blocks of a shared pool), and
every row has its own position, so sentences can join a running batch.
Embeddings are scaled by sqrt(E); with tie_embeddings the output projection shares the target embedding, and
the source embedding too when the vocabulary is joint (section 3.4).

Legend: B batch, S source length, T target length, E model dim, H heads, V target vocabulary.
"""

from __future__ import annotations

import torch
from torch import nn

from translate.attention import KVCache
from translate.attention.paged import BlockPool, PagedKVCache
from translate.data.vocab import PAD_ID
from translate.models.embedding import ScaledEmbedding, build_positions
from translate.models.interface import Seq2Seq, State, reorder
from translate.models.transformer_layers import DecoderLayer, EncoderLayer


class Transformer(Seq2Seq):
    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        shared_vocab: bool = False,
        d_model: int = 512,
        ffn_dim: int = 2048,
        num_heads: int = 8,
        encoder_layers: int = 6,
        decoder_layers: int = 6,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        activation: str = "relu",
        norm_first: bool = False,
        positions: str = "sinusoidal",
        max_positions: int = 1024,
        tie_embeddings: bool = True,
        attention_backend: str = "auto",
    ):
        """The defaults are the paper's base model (section 3, table 3): d 512, ff 2048, 8 heads, 6+6 layers,
        dropout 0.1 on sublayer outputs and embedding sums, none on the attention weights (attention_dropout),
        post-norm, sinusoids, embeddings tied; conf/model/*.yaml mark what they change ("paper: ...").

        norm_first: pre-norm (plus a final LayerNorm) instead of the paper's post-norm.
        positions: "sinusoidal" (any length) or "learned" (up to max_positions).
        attention_backend: auto | math | sdpa | triton (translate.attention.backend).
        """
        super().__init__()
        self.src_vocab_size, self.tgt_vocab_size = src_vocab_size, tgt_vocab_size
        self.num_heads = num_heads
        self.max_positions = max_positions if positions == "learned" else None  # None: any length
        self.src_embedding = ScaledEmbedding(src_vocab_size, d_model)
        share_src = tie_embeddings and shared_vocab and src_vocab_size == tgt_vocab_size
        self.tgt_embedding = self.src_embedding if share_src else ScaledEmbedding(tgt_vocab_size, d_model)
        self.src_positions = build_positions(positions, d_model, max_positions)
        self.tgt_positions = build_positions(positions, d_model, max_positions)
        self.dropout = nn.Dropout(dropout)
        layer_args = (d_model, num_heads, ffn_dim, dropout, attention_dropout, activation, norm_first)
        self.encoder_layers = nn.ModuleList(
            EncoderLayer(*layer_args, backend=attention_backend) for _ in range(encoder_layers)
        )
        self.decoder_layers = nn.ModuleList(
            DecoderLayer(*layer_args, backend=attention_backend) for _ in range(decoder_layers)
        )
        self.encoder_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.decoder_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.output = nn.Linear(d_model, tgt_vocab_size, bias=False)
        if tie_embeddings:
            self.output.weight = self.tgt_embedding.weight
        else:
            nn.init.normal_(self.output.weight, mean=0.0, std=d_model**-0.5)

    def _encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """src (B,S) -> memory (B,S,E), pad mask (B,S)."""
        pad_mask = src.eq(PAD_ID)
        x = self.dropout(self.src_embedding(src) + self.src_positions(src.size(1)))  # (B,S,E)
        for layer in self.encoder_layers:
            x = layer(x, pad_mask)
        return self.encoder_norm(x), pad_mask

    def _decode(
        self, tgt_in: torch.Tensor, memory: torch.Tensor, pad_mask: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
        """Teacher forcing: tgt_in (B,T) -> logits (B,T,V), cross-attention weights per layer."""
        x = self.dropout(self.tgt_embedding(tgt_in) + self.tgt_positions(tgt_in.size(1)))  # (B,T,E)
        weights = []
        for layer in self.decoder_layers:
            x, w = layer(x, memory, pad_mask, need_weights=need_weights)
            weights.append(w)
        return self.output(self.decoder_norm(x)), weights

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        memory, pad_mask = self._encode(src)
        return self._decode(tgt_in, memory, pad_mask)[0]

    def encode(self, src: torch.Tensor, paged: BlockPool | None = None) -> State:
        """src (B,S) -> decoder state; with `paged` the self-attention cache is a PagedKVCache on that pool
        (serving), else one contiguous KVCache per layer."""
        memory, pad_mask = self._encode(src)  # (B,S,E), (B,S)
        batch = src.size(0)
        cross = [layer.cross_attn.cache_memory(memory, pad_mask) for layer in self.decoder_layers]
        return {
            "cross_caches": cross,  # per layer the source's keys/values (B,H,S,D) and mask, projected once
            "self_caches": PagedKVCache(paged, batch) if paged else [KVCache() for _ in self.decoder_layers],
            "src_rows": torch.arange(batch, device=src.device),  # (B,) the source each decoder row reads
            "position": torch.zeros(batch, dtype=torch.long, device=src.device),  # (B,) next target position
        }

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        pos = state["position"]  # (B,): rows that joined a running batch later are at earlier positions
        x = self.tgt_embedding(tokens[:, None]) + self.tgt_positions.at(pos)[:, None]  # (B,1,E)
        x = self.dropout(x)
        caches = state["self_caches"]
        paged = isinstance(caches, PagedKVCache)
        if paged:
            caches.begin_step()  # a slot per row for this token
            caches = [caches.layer(i) for i in range(len(self.decoder_layers))]
        for layer, self_cache, cross_cache in zip(self.decoder_layers, caches, state["cross_caches"]):
            x, _ = layer(x, cross_cache, self_cache=self_cache)
        if paged:
            state["self_caches"].end_step()
        logits = self.output(self.decoder_norm(x[:, 0]))  # (B,V)
        return logits, {**state, "position": pos + 1}

    def reorder_state(self, state: State, index: torch.Tensor) -> State:
        """Rows `index` (B',) of the state. The source side (the cross-attention caches) is a function of the
        source row alone, so it is copied only when some row comes to read another source than the one it
        holds: never for beam search's reorders within one sentence's beams."""
        src_rows = state["src_rows"].index_select(0, index)  # (B',)
        out = {
            **state,
            "self_caches": reorder(state["self_caches"], index),
            "position": state["position"].index_select(0, index),  # (B',)
            "src_rows": src_rows,
        }
        if src_rows.shape == state["src_rows"].shape and torch.equal(src_rows, state["src_rows"]):
            return out  # every row already holds its source's keys and values
        out["cross_caches"] = reorder(state["cross_caches"], index)
        return out

    def join_states(self, state: State, other: State) -> State:
        """The rows of `state`, then those of `other`; `other`'s source labels are shifted past `state`'s, so
        reorder_state never mistakes a joined row's source for another row's."""
        shift = int(state["src_rows"].max()) + 1 if state["src_rows"].numel() else 0
        return super().join_states(state, {**other, "src_rows": other["src_rows"] + shift})

    def kv_memory(self, state: State) -> tuple[int, int]:
        """(bytes allocated, bytes used) by the decoder self-attention cache of a decoding state."""
        caches = state["self_caches"]
        parts = [caches.memory()] if isinstance(caches, PagedKVCache) else [c.memory() for c in caches]
        return sum(a for a, _ in parts), sum(u for _, u in parts)

    def new_block_pool(self, block_size: int, num_blocks: int = 64) -> BlockPool:
        """An empty pool of paged self-attention K/V blocks for this decoder (its layers, heads, dtype)."""
        attn = self.decoder_layers[0].self_attn
        weight = self.tgt_embedding.weight  # float, also when dynamic int8 has quantized the Linears
        return BlockPool(len(self.decoder_layers), attn.num_heads, attn.head_dim, block_size, num_blocks,
                         weight.dtype, weight.device)  # fmt: skip

    def attention_weights(self, src: torch.Tensor, tgt_in: torch.Tensor) -> dict[str, torch.Tensor]:
        """Cross-attention of every decoder layer: {"layer0": (B,H,T,S), ...}."""
        memory, pad_mask = self._encode(src)
        weights = self._decode(tgt_in, memory, pad_mask, need_weights=True)[1]
        return {f"layer{i}": w for i, w in enumerate(weights)}
