"""Export a Transformer checkpoint to CTranslate2: `translate export CKPT --format ct2 -o DIR`.

The model is written as a `ctranslate2.specs.TransformerSpec` through CTranslate2's converter API (spec ->
validate -> optimize(quantization) -> save), the way CTranslate2's own OpenNMT-py and Marian converters do:

| ours (translate.models.transformer)         | TransformerSpec                                    |
|---------------------------------------------|----------------------------------------------------|
| norm_first false (post-norm) / true         | pre_norm False / True (+ encoder/decoder layer_norm)|
| src/tgt ScaledEmbedding (times sqrt(E) or 1)| embeddings, scale_embeddings=True / False          |
| sinusoid table (either layout) / learned    | position_encodings.encodings (max_positions rows)  |
| q/k/v/out_proj of self-attention            | self_attention.linear[0] = fused QKV, linear[1]    |
| q_proj / k,v_proj / out_proj of cross-attn  | attention.linear[0] / fused KV linear[1] / linear[2]|
| norm1, norm2 (, norm3)                      | self_attention / (attention /) ffn layer_norm      |
| ffn.linear1 / linear2, relu, gelu or swish  | ffn.linear_0 / linear_1, Activation.RELU/GELU/SWISH|
| output (tied or not; its bias if it has one)| decoder.projection (weight, bias)                  |
| SentencePiece pieces, <pad> <unk> <s> </s>  | source/target vocabulary; add_source_eos=True      |

Every weight of the checkpoint must land in the spec: a parameter with no place (a model feature the spec
cannot hold) is refused with a one-line ExportError, as are RNN models (their int8 path is
`translate --quantize int8`). The directory is written under a temporary name and renamed when complete.
Beside CTranslate2's own files it holds the SentencePiece model(s) (and a shared vocabulary, for a
tokenizer that has one) and translate.json (what `translate
--engine ct2` and `make eval ENGINE=ct2` need: tokenizer files, data config, positions, provenance).

The file keeps the chosen type; what runs depends on the CPU that loads it (cpu_compute_type, and
CT2Engine.info["compute_type"] once loaded): int16 runs as int16 only on Intel CPUs (MKL), as int8 on AMD
and ARM; float16 runs as float32 on every CPU; int8 is int8 weights with float32 activations everywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from translate.data.vocab import BOS_PIECE, EOS_PIECE, PAD_PIECE, SPECIAL_IDS, UNK_PIECE
from translate.files import write_dir_atomic
from translate.models.checkpoint import load_model
from translate.models.embedding import LearnedPositions, SinusoidalPositions, sinusoid_table

QUANTIZATIONS = ("int8", "int8_float32", "int16", "float16", "float32")
META_FILE = "translate.json"
META_VERSION = 1
JOINT_SPM, SRC_SPM, TGT_SPM = "sentencepiece.model", "source.spm.model", "target.spm.model"
VOCAB_FILE = "tokenizer_vocab.json"  # a tokenizer with a shared vocabulary: the piece of every id, as a list


def read_tokenizer(model_dir: Path, tok: dict):
    """The Tokenizer an export holds (meta["tokenizer"] names its files); OSError/ValueError when unusable."""
    from translate.data.tokenizer import Tokenizer

    src = (model_dir / tok["src"]).read_bytes()
    tgt = None if tok["shared"] else (model_dir / tok["tgt"]).read_bytes()
    vocab = json.loads((model_dir / tok["vocab"]).read_text(encoding="utf-8")) if tok.get("vocab") else None
    return Tokenizer(src, tgt, vocab)


def cpu_compute_type(quantization: str) -> str:
    """What CTranslate2 runs an export of this quantization as on this machine's CPU: its documented load-time
    fallbacks ("Implicit type conversion on load") over ctranslate2.get_supported_compute_types("cpu").
    int8 and int8_float32 run as int8_float32 everywhere; int16 only with Intel MKL (Intel CPUs, or
    CT2_USE_MKL=1 on another x86 CPU), else as int8_float32 (AMD, ARM); float16 as float32 on CPUs."""
    import ctranslate2

    supported = set(ctranslate2.get_supported_compute_types("cpu"))
    if quantization in ("int8", "int8_float32") or (quantization == "int16" and "int16" not in supported):
        return "int8_float32"
    if quantization == "float16" and "float16" not in supported:
        return "float32"
    return quantization


class ExportError(ValueError):
    """A checkpoint CTranslate2 cannot represent, or an unusable output path: one line."""


def export_ct2(checkpoint: str | Path, out_dir: str | Path, quantization: str = "int8", force: bool = False):
    """Write `checkpoint` as a CTranslate2 model directory `out_dir` -> out_dir (a Path)."""
    import ctranslate2

    if quantization not in QUANTIZATIONS:
        raise ExportError(f"--quantization {quantization}: expected one of {'|'.join(QUANTIZATIONS)}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not force:
        raise ExportError(f"{out_dir}: already exists (use --force to replace it)")
    model, tokenizer, ckpt = load_model(checkpoint, "cpu")
    name = type(model).__name__
    if model.ct2_spec != "TransformerSpec":  # the one spec written here (Seq2Seq.ct2_spec declares it)
        raise ExportError(
            f"{checkpoint}: {name} declares no CTranslate2 spec this export writes (ct2_spec "
            f"{model.ct2_spec!r}; the export writes TransformerSpec); for int8 on the CPU use "
            "`translate --quantize int8`"
        )
    spec = transformer_spec(model, checkpoint)
    spec.config.add_source_eos = True  # our sources end with </s>
    spec.config.layer_norm_epsilon = layer_norm_epsilon(model, checkpoint)
    spec.register_source_vocabulary(vocabulary(tokenizer, "src", checkpoint))
    spec.register_target_vocabulary(vocabulary(tokenizer, "tgt", checkpoint))
    spec.validate()
    spec.optimize(quantization=quantization)

    meta = {
        "format": "ct2", "version": META_VERSION, "quantization": quantization,
        "ctranslate2": ctranslate2.__version__, "checkpoint": str(checkpoint), "step": ckpt.get("step"),
        "model": name, "parameters": model.num_parameters(), "model_config": ckpt["model_config"],
        "data": (ckpt.get("config") or {}).get("data"), "max_positions": positions_rows(model),
        "tokenizer": {"shared": tokenizer.shared, "src": JOINT_SPM if tokenizer.shared else SRC_SPM,
                      "tgt": JOINT_SPM if tokenizer.shared else TGT_SPM,
                      **({"vocab": VOCAB_FILE} if tokenizer.vocab is not None else {})},
    }  # fmt: skip
    state = tokenizer.state_dict()

    def write(tmp: Path) -> None:
        spec.save(str(tmp))
        if tokenizer.shared:
            (tmp / JOINT_SPM).write_bytes(state["src_model"])
        else:
            (tmp / SRC_SPM).write_bytes(state["src_model"])
            (tmp / TGT_SPM).write_bytes(state["tgt_model"])
        if tokenizer.vocab is not None:  # the shared id space of two SentencePiece models (Marian)
            text = json.dumps(tokenizer.vocab, ensure_ascii=False) + "\n"
            (tmp / VOCAB_FILE).write_text(text, encoding="utf-8")
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    return write_dir_atomic(out_dir, write)


def transformer_spec(model, checkpoint):
    """Our Transformer -> a filled TransformerSpec; every parameter of the model must be consumed."""
    from ctranslate2.specs import common_spec, transformer_spec

    activation = model.encoder_layers[0].ffn.activation
    acts = {torch.nn.functional.relu: common_spec.Activation.RELU, torch.nn.functional.gelu:
            common_spec.Activation.GELU, torch.nn.functional.silu: common_spec.Activation.SWISH}  # fmt: skip
    if activation not in acts:
        raise ExportError(f"{checkpoint}: FFN activation {activation.__name__} has no CTranslate2 equivalent")
    pre_norm = model.encoder_layers[0].norm_first
    spec = transformer_spec.TransformerSpec.from_config(
        (len(model.encoder_layers), len(model.decoder_layers)),
        model.num_heads,
        pre_norm=pre_norm,
        activation=acts[activation],
    )
    w = Weights(model)
    enc, dec = spec.encoder, spec.decoder
    enc.embeddings[0].weight = w("src_embedding.weight")
    dec.embeddings.weight = w("tgt_embedding.weight")
    enc.scale_embeddings = dec.scale_embeddings = model.src_embedding.scale != 1.0
    enc.position_encodings.encodings = position_table(model.src_positions, "src_positions", w)
    dec.position_encodings.encodings = position_table(model.tgt_positions, "tgt_positions", w)
    for i, layer in enumerate(enc.layer):
        p = f"encoder_layers.{i}"
        set_attention(layer.self_attention, w, f"{p}.self_attn", fused=("q", "k", "v"))
        set_norm(layer.self_attention.layer_norm, w, f"{p}.norm1")
        set_ffn(layer.ffn, w, p, f"{p}.norm2")
    for i, layer in enumerate(dec.layer):
        p = f"decoder_layers.{i}"
        set_attention(layer.self_attention, w, f"{p}.self_attn", fused=("q", "k", "v"))
        set_norm(layer.self_attention.layer_norm, w, f"{p}.norm1")
        set_attention(layer.attention, w, f"{p}.cross_attn", fused=("k", "v"))
        set_norm(layer.attention.layer_norm, w, f"{p}.norm2")
        set_ffn(layer.ffn, w, p, f"{p}.norm3")
    if pre_norm:
        set_norm(enc.layer_norm, w, "encoder_norm")
        set_norm(dec.layer_norm, w, "decoder_norm")
    set_linear(dec.projection, w, "output")
    w.check_all_used(checkpoint)
    return spec


class Weights:
    """name -> float32 numpy array from the model's state_dict, remembering which names were used."""

    def __init__(self, model):
        self.state = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
        self.used: set[str] = set()

    def __call__(self, name: str) -> np.ndarray:
        self.used.add(name)
        return self.state[name].numpy()

    def check_all_used(self, checkpoint) -> None:
        left = sorted(set(self.state) - self.used)
        if left:
            more = f" (and {len(left) - 1} more)" if len(left) > 1 else ""
            raise ExportError(f"{checkpoint}: parameter {left[0]}{more} has no place in a TransformerSpec")


def set_linear(spec, w: Weights, name: str) -> None:
    spec.weight = w(f"{name}.weight")
    if f"{name}.bias" in w.state:
        spec.bias = w(f"{name}.bias")


def set_attention(spec, w: Weights, name: str, fused: tuple[str, ...]) -> None:
    """Self-attention: linear[0] = [q; k; v], [1] = out. Cross-attention: [0] = q, [1] = [k; v], [2] = out."""
    from ctranslate2.specs import common_spec

    parts = [common_spec.LinearSpec() for _ in fused]
    for part, which in zip(parts, fused):
        set_linear(part, w, f"{name}.{which}_proj")
    fused_spec = spec.linear[0] if len(fused) == 3 else spec.linear[1]
    fused_spec.weight = np.concatenate([p.weight for p in parts])  # (3E, E) or (2E, E)
    fused_spec.bias = np.concatenate([p.bias for p in parts])
    if len(fused) == 2:
        set_linear(spec.linear[0], w, f"{name}.q_proj")
    set_linear(spec.linear[-1], w, f"{name}.out_proj")


def set_norm(spec, w: Weights, name: str) -> None:
    spec.gamma = w(f"{name}.weight")
    spec.beta = w(f"{name}.bias")


def set_ffn(spec, w: Weights, layer: str, norm: str) -> None:
    set_linear(spec.linear_0, w, f"{layer}.ffn.linear1")
    set_linear(spec.linear_1, w, f"{layer}.ffn.linear2")
    set_norm(spec.layer_norm, w, norm)


def positions_rows(model) -> int:
    pos = model.src_positions
    return pos.weight.size(0) if isinstance(pos, LearnedPositions) else pos.table.size(0)


def position_table(module, name: str, w: Weights) -> np.ndarray:
    """(P, E) encodings: the learned table, or our sinusoids in their layout (always written out, so
    CTranslate2's own default table is never assumed)."""
    if isinstance(module, LearnedPositions):
        return w(f"{name}.weight")
    assert isinstance(module, SinusoidalPositions)
    return sinusoid_table(module.table.size(0), module.embed_dim, module.halves).numpy()


def layer_norm_epsilon(model, checkpoint) -> float:
    eps = {m.eps for m in model.modules() if isinstance(m, torch.nn.LayerNorm)}
    if len(eps) != 1:
        raise ExportError(f"{checkpoint}: layer norms with epsilons {sorted(eps)}, CTranslate2 has one")
    return float(eps.pop())


def vocabulary(tokenizer, side: str, checkpoint) -> list[str]:
    """The SentencePiece pieces in id order; CTranslate2 finds its specials by these names."""
    size = tokenizer.src_vocab_size if side == "src" else tokenizer.tgt_vocab_size
    pieces = [tokenizer.id_to_piece(i, side) for i in range(size)]
    expected = [PAD_PIECE, UNK_PIECE, BOS_PIECE, EOS_PIECE]
    if [pieces[i] for i in SPECIAL_IDS] != expected:
        raise ExportError(f"{checkpoint}: {side} special pieces {pieces[:4]}, CTranslate2 wants {expected}")
    if len(set(pieces)) != len(pieces):
        raise ExportError(f"{checkpoint}: the {side} vocabulary repeats a piece, CTranslate2 needs unique")
    return pieces
