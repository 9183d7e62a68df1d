"""The Transformer encoder-decoder (Vaswani et al. 2017), on the attention core.

Teacher forcing runs the decoder's self-attention with the causal fast path over the whole target; step()
decodes one token at a time with a KVCache per layer: self-attention appends, cross-attention keys/values
are projected once in encode() (MultiHeadAttention.cache_memory), so the decoding state holds no memory.
The cross-attention caches hold one row per source sentence, not per decoder row: `src_rows` maps each
decoder row to its source, and when the rows are each source's G consecutive rows in source order (beam
search's K beams, greedy's one row) the G rows attend as G queries of their source's single copy. So beam
reorders never copy the source side, joining copies it once per sentence rather than once per beam, and
the keys/values are read once per sentence at every step. Any other layout is served by gathering a copy.
For serving, encode(src, paged=pool) keeps the self-attention keys/values in a PagedKVCache instead (blocks
of a shared pool), and every row has its own position, so sentences can join a running batch.
Embeddings are scaled by sqrt(E) (unless scale_embeddings=False); with tie_embeddings the output projection
shares the target embedding, and the source embedding too when the vocabulary is joint (section 3.4);
output_bias adds a bias to it (Marian's final_logits_bias).

Legend: B batch, S source length, T target length, E model dim, H heads, V target vocabulary.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from translate.attention import KVCache
from translate.attention.paged import BlockPool, PagedKVCache
from translate.data.vocab import PAD_ID
from translate.models import decoding_step, encoder_inference, packed
from translate.models.dropout import Dropout
from translate.models.embedding import ScaledEmbedding, build_positions
from translate.models.interface import Seq2Seq, State, concat, reorder
from translate.models.quantize import float_weight
from translate.models.transformer_layers import DecoderLayer, EncoderLayer


class Transformer(Seq2Seq):
    ct2_spec = "TransformerSpec"  # CTranslate2's encoder-decoder spec (engines/ct2_export.py)
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
        scale_embeddings: bool = True,
        output_bias: bool = False,
        attention_backend: str = "auto",
    ):
        """The defaults are the paper's base model (section 3, table 3): d 512, ff 2048, 8 heads, 6+6 layers,
        dropout 0.1 on sublayer outputs and embedding sums, none on the attention weights (attention_dropout),
        post-norm, sinusoids, embeddings tied; conf/model/*.yaml mark what they change ("paper: ...").

        norm_first: pre-norm (plus a final LayerNorm) instead of the paper's post-norm.
        positions: "sinusoidal" (any length), "sinusoidal_halves" (the same sines and cosines laid out as
            [sines; cosines], Marian's layout) or "learned" (up to max_positions).
        activation: relu (the paper), gelu or swish (SiLU, Marian).
        scale_embeddings: multiply embeddings by sqrt(d_model) (the paper; Marian's scale_embedding).
        output_bias: a bias on the output projection (Marian's final_logits_bias); the paper has none.
        attention_backend: auto | math | sdpa | triton (translate.attention.backend).
        """
        super().__init__()
        self.src_vocab_size, self.tgt_vocab_size = src_vocab_size, tgt_vocab_size
        self.num_heads = num_heads
        self.d_model, self.ffn_dim = d_model, ffn_dim
        self.max_positions = max_positions if positions == "learned" else None  # None: any length
        self.src_embedding = ScaledEmbedding(src_vocab_size, d_model, scale_embeddings)
        share_src = tie_embeddings and shared_vocab and src_vocab_size == tgt_vocab_size
        self.tgt_embedding = (
            self.src_embedding if share_src else ScaledEmbedding(tgt_vocab_size, d_model, scale_embeddings)
        )
        self.src_positions = build_positions(positions, d_model, max_positions)
        self.tgt_positions = build_positions(positions, d_model, max_positions)
        self.dropout = Dropout(dropout)
        layer_args = (d_model, num_heads, ffn_dim, dropout, attention_dropout, activation, norm_first)
        self.encoder_layers = nn.ModuleList(
            EncoderLayer(*layer_args, backend=attention_backend) for _ in range(encoder_layers)
        )
        self.decoder_layers = nn.ModuleList(
            DecoderLayer(*layer_args, backend=attention_backend) for _ in range(decoder_layers)
        )
        self.encoder_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.decoder_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.output = nn.Linear(d_model, tgt_vocab_size, bias=output_bias)
        if output_bias:
            nn.init.zeros_(self.output.bias)
        if tie_embeddings:
            self.output.weight = self.tgt_embedding.weight
        else:
            nn.init.normal_(self.output.weight, mean=0.0, std=d_model**-0.5)

    def _encode(self, src: torch.Tensor, packed: tuple | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """src (B,S) -> memory (B,S,E), pad mask (B,S); with `packed` (encoder_inference.packed: inference on
        a CPU) the encoder's products run through our kernel, else the layer modules run."""
        pad_mask = src.eq(PAD_ID)
        x = self.dropout(self.src_embedding(src) + self.src_positions(src.size(1)))  # (B,S,E)
        if packed is None:
            x = encoder_inference.run_layers_reference(self.encoder_layers, x, pad_mask)
        else:
            x = encoder_inference.run_layers(self.encoder_layers, x, pad_mask, packed[0])
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
        memory, pad_mask = self._encode(src, encoder_inference.packed(self))
        return self._decode(tgt_in, memory, pad_mask)[0]

    def encode(self, src: torch.Tensor, paged: BlockPool | None = None) -> State:
        """src (B,S) -> decoder state; with `paged` the self-attention cache is a PagedKVCache on that pool
        (serving), else one contiguous KVCache per layer."""
        products = encoder_inference.packed(self)  # inference on a CPU: the products through our kernel
        memory, pad_mask = self._encode(src, products)  # (B,S,E), (B,S)
        batch = src.size(0)
        if products is None:  # per decoder layer the source's keys/values
            cross = encoder_inference.memory_caches_reference(self.decoder_layers, memory, pad_mask)
        else:
            cross = encoder_inference.memory_caches(self.decoder_layers, memory, pad_mask, products[1])
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
        cross, group = state["cross_caches"], source_groups(state["src_rows"], sources(state))
        if group is None:  # rows in another layout: each row gets a copy of its source's keys/values
            cross = [select(c, state["src_rows"]) for c in cross]
        fast = decoding_step.applies(self, caches)
        run = decoding_step.run_layers if fast else decoding_step.run_layers_reference
        h = run(self.decoder_layers, x[:, 0], caches, cross, group or 1)  # (B,E)
        if paged:
            state["self_caches"].end_step()
        h = self.decoder_norm(h)  # (B,E)
        rows = state.get("output_rows")  # a shortlist's rows of the output projection, restrict_output
        logits = packed.linear(self.output, h) if rows is None else F.linear(h, *rows)  # (B,V) or (B,Vs)
        return logits, {**state, "position": pos + 1}

    def restrict_output(self, state: State, vocab: torch.Tensor) -> State:
        """step() then projects onto the target ids `vocab` (Vs,) only: their rows of the output weight (and
        bias), gathered once per batch (float, also when dynamic int8 has quantized the projection)."""
        weight, bias = float_weight(self.output)  # (V,E), (V,) | None
        rows = (weight.index_select(0, vocab), None if bias is None else bias.index_select(0, vocab))
        return {**state, "output_rows": rows}  # (Vs,E), (Vs,) | None; batch-independent: reorders keep it

    def reorder_state(self, state: State, index: torch.Tensor) -> State:
        """Rows `index` (B',) of the state. The source side (one cross-attention row per source) is not
        copied; only sources that no row reads any more are dropped from it (sentences that finished)."""
        src_rows = state["src_rows"].index_select(0, index)  # (B',) into the cross caches' rows
        out = {
            **state,
            "self_caches": reorder(state["self_caches"], index),
            "position": state["position"].index_select(0, index),  # (B',)
            "src_rows": src_rows,
        }
        used = torch.unique(src_rows)  # (N',) sorted: the sources still read, in their order
        if used.numel() < sources(state):
            out["cross_caches"] = reorder(state["cross_caches"], used)
            out["src_rows"] = torch.searchsorted(used, src_rows)
        return out

    def join_states(self, state: State, other: State) -> State:
        """The rows of `state`, then those of `other` (sentences joining a running batch); the cross caches
        join one row per source, and `other`'s source indices move past `state`'s."""
        n, m = sources(state), sources(other)
        rows = (state["src_rows"].numel(), other["src_rows"].numel())
        return {
            "cross_caches": [a.join(b, (n, m)) for a, b in zip(state["cross_caches"], other["cross_caches"])],
            "self_caches": concat(state["self_caches"], other["self_caches"], rows),
            "src_rows": torch.cat([state["src_rows"], other["src_rows"] + n]),
            "position": torch.cat([state["position"], other["position"]]),
        }

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

    def flops_per_target_token(self, src_len: float, tgt_len: float) -> float:
        """Counted as 2 FLOPs per multiply-add, backward = 2 x forward (the gradients of the inputs and of the
        weights are one matmul each of the forward's size); embeddings, softmax, norms and the optimizer are
        not counted. For S source and T target tokens, d = d_model, f = ffn_dim, V = target vocabulary:

            encoder, per layer and source token:  2 (4 d^2 + 2 d f) + 4 S d   q k v o, FFN; scores and sum
            decoder, per layer and target token:  2 (6 d^2 + 2 d f) + 4 T d + 4 S d   self q k v o, cross q o
                     per layer and source token:  2 (2 d^2)                   the cross keys and values
            output, per target token:             2 d V

        -> 3 x (forward FLOPs of one pair) / T. The attention products count every key (the causal half is
        computed and masked, not skipped). The default model (d 256, f 1024, 3+3 layers, 8k vocabulary) at
        S = T = 40: 46.4 MFLOP."""
        d, f, v = self.d_model, self.ffn_dim, self.tgt_vocab_size
        s, t = float(src_len), float(tgt_len)
        encoder = len(self.encoder_layers) * s * (2 * (4 * d * d + 2 * d * f) + 4 * s * d)
        decoder_per_tgt = 2 * (6 * d * d + 2 * d * f) + 4 * t * d + 4 * s * d
        decoder = len(self.decoder_layers) * (t * decoder_per_tgt + s * 2 * 2 * d * d)
        return 3.0 * (encoder + decoder + t * 2 * d * v) / t

    def linear_shapes(self) -> dict[tuple[int, int], int]:
        """Per encoder layer q k v o and the FFN's two; per decoder layer self q k v o, cross q k v o and the
        FFN's two; the output projection once."""
        d, f = self.d_model, self.ffn_dim
        enc, dec = len(self.encoder_layers), len(self.decoder_layers)
        return {(d, d): 4 * enc + 8 * dec, (f, d): enc + dec, (d, f): enc + dec, (self.tgt_vocab_size, d): 1}

    def attention_weights(self, src: torch.Tensor, tgt_in: torch.Tensor) -> dict[str, torch.Tensor]:
        """Cross-attention of every decoder layer: {"layer0": (B,H,T,S), ...}."""
        memory, pad_mask = self._encode(src, encoder_inference.packed(self))
        weights = self._decode(tgt_in, memory, pad_mask, need_weights=True)[1]
        return {f"layer{i}": w for i, w in enumerate(weights)}


def sources(state: State) -> int:
    """Source sentences held by a decoding state's cross-attention caches."""
    return state["cross_caches"][0].k.shape[0]


def source_groups(src_rows: torch.Tensor, n_sources: int) -> int | None:
    """G when the rows are each source's G consecutive rows, sources in order (src_rows = 0..0, 1..1, ...);
    None for any other layout."""
    rows = src_rows.numel()
    if n_sources == 0 or rows % n_sources:
        return None
    group = rows // n_sources
    expected = torch.arange(n_sources, device=src_rows.device).repeat_interleave(group)  # (B,)
    return group if torch.equal(src_rows, expected) else None


def select(cache: KVCache, rows: torch.Tensor) -> KVCache:
    """A new cache holding rows `rows` of `cache` (the original is left as it is: reorder replaces tensors,
    so it can run on a shallow copy)."""
    return copy.copy(cache).reorder(rows)
