"""Import a Marian / OPUS-MT model (the `transformers` MarianMTModel layout) as an ordinary checkpoint.

A source directory holds config.json, model.safetensors or pytorch_model.bin, source.spm, target.spm and
vocab.json (what `huggingface_hub.snapshot_download("Helsinki-NLP/opus-mt-es-en")` fetches; a hub id is
downloaded only by `translate import marian <hub id>`, never by a test). The result is a Transformer with
ordinary options, so every tool reads it as any trained checkpoint:

| Marian (MarianConfig, MarianMTModel)              | ours (translate.models.transformer.Transformer)      |
|---------------------------------------------------|------------------------------------------------------|
| post-norm layers, no final or embedding LayerNorm | norm_first=false                                     |
| scale_embedding (sqrt(d_model) or 1)              | scale_embeddings                                     |
| sinusoids as [sines; cosines], positions from 0   | positions=sinusoidal_halves (the stored table checked)|
| activation_function swish / silu / relu / gelu    | activation swish / relu / gelu                       |
| model.shared = embed_tokens = lm_head (tied)      | src = tgt embedding = output (tie_embeddings, joint)  |
| final_logits_bias                                 | output_bias=true, output.bias                        |
| q/k/v/out_proj, self_attn/encoder_attn(_layer_norm)| self_attn / cross_attn, norm1 / norm2              |
| fc1, fc2, final_layer_norm                        | ffn.linear1, ffn.linear2, norm2 (encoder) / norm3    |
| source.spm + target.spm numbered by vocab.json    | Tokenizer(src, tgt, vocab): one shared id space      |

Ids: ours keep PAD 0, UNK 1, BOS 2, EOS 3 (the batches, masks and searches rely on them), so the vocabulary
is permuted: our 0 = Marian's pad, 1 = its <unk>, 3 = its </s>, then Marian's other ids in their order, and
our BOS (2) is one row added for the decoder start: a copy of Marian's decoder_start_token_id row (its pad),
so decoding from BOS feeds the decoder what Marian's generate() feeds it. `our_ids` gives the map, and our
logits at our_ids equal Marian's. Our searches never generate PAD or BOS, as generate() with OPUS-MT's
bad_words_ids [[pad]] never generates pad.

What it refuses (one line each, MarianImportError): separate source/target vocabularies, untied output or
embeddings, unequal encoder/decoder heads or FFN sizes, pre-norm or embedding LayerNorm variants, another
activation, position tables that are not Marian's sinusoids, a vocabulary that lacks <unk> or holds a "<s>",
and any weight left without a place.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import torch

from translate.data.tokenizer import Tokenizer
from translate.data.vocab import BOS_ID, BOS_PIECE, EOS_PIECE, PAD_PIECE, UNK_PIECE
from translate.models.embedding import sinusoid_table

log = logging.getLogger(__name__)

TARGET = "translate.models.transformer.Transformer"
ACTIVATIONS = {"swish": "swish", "silu": "swish", "relu": "relu", "gelu": "gelu"}
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
OPUS_NAME = re.compile(r"opus-mt-([A-Za-z_]+)-([A-Za-z_]+)$")  # Helsinki-NLP/opus-mt-es-en


class MarianImportError(ValueError):
    """A source that is not a Marian model we can carry: one line saying what."""


def fetch(source: str, cache_dir: str | None = None) -> Path:
    """SOURCE as a local directory: itself when it is one, else a hub id downloaded with huggingface_hub."""
    path = Path(source)
    if path.is_dir():
        return path
    if path.exists():
        raise MarianImportError(f"{source}: not a directory (expected a transformers model directory)")
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", source):
        raise MarianImportError(f"{source}: no such directory, and not a hub id (owner/name)")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise MarianImportError("a hub id needs huggingface_hub: pip install -e '.[marian]'") from None
    patterns = ["config.json", "generation_config.json", "tokenizer_config.json", "*.spm", "vocab.json",
                "model.safetensors", "pytorch_model.bin"]  # fmt: skip
    try:
        return Path(snapshot_download(source, allow_patterns=patterns, cache_dir=cache_dir))
    except Exception as e:  # network, unknown repository, authentication: the hub's own message
        raise MarianImportError(f"{source}: download failed ({str(e).strip().splitlines()[0]})") from None


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MarianImportError(f"{path}: missing") from None
    except (OSError, ValueError) as e:
        raise MarianImportError(f"{path}: unreadable JSON ({e})") from None


def read_weights(directory: Path) -> dict[str, torch.Tensor]:
    """model.safetensors (preferred) or pytorch_model.bin (read weights_only) -> name: tensor."""
    for name in WEIGHT_FILES:
        path = directory / name
        if not path.is_file():
            continue
        try:
            if name.endswith(".safetensors"):
                from safetensors.torch import load_file

                return load_file(str(path))
            return torch.load(path, map_location="cpu", weights_only=True)
        except ImportError:
            raise MarianImportError(f"{path}: needs safetensors: pip install -e '.[marian]'") from None
        except Exception as e:  # any parse error of an untrusted file
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise MarianImportError(f"{path}: unreadable weights ({reason})") from None
    raise MarianImportError(f"{directory}: no {' or '.join(WEIGHT_FILES)}")


def model_config(cfg: dict, where: Path) -> dict:
    """MarianConfig -> our model config (Hydra style, _target_ first); refuses what our Transformer lacks."""

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise MarianImportError(f"{where}: {what}")

    need(cfg.get("model_type") == "marian", f"model_type {cfg.get('model_type')!r}, expected 'marian' "
         "(only MarianMT models are imported)")  # fmt: skip
    vocab = cfg["vocab_size"]
    need(cfg.get("decoder_vocab_size") in (None, vocab), "separate source and target vocabularies "
         f"(decoder_vocab_size {cfg.get('decoder_vocab_size')} != vocab_size {vocab}) are not supported")
    shared = cfg.get("share_encoder_decoder_embeddings", True)
    need(shared, "unshared encoder/decoder embeddings are not supported")
    need(cfg.get("tie_word_embeddings", True), "an output layer not tied to the embeddings is not supported")
    heads = cfg["encoder_attention_heads"]
    need(cfg["decoder_attention_heads"] == heads, "different encoder and decoder head counts")
    ffn = cfg["encoder_ffn_dim"]
    need(cfg["decoder_ffn_dim"] == ffn, "different encoder and decoder FFN sizes")
    for key in ("normalize_before", "normalize_embedding", "add_final_layer_norm", "layernorm_embedding"):
        need(not cfg.get(key), f"{key}=true is not a MarianMT layout our Transformer carries")
    act = str(cfg.get("activation_function", "swish"))
    need(act in ACTIVATIONS, f"activation_function {act!r} (supported: {', '.join(ACTIVATIONS)})")
    if cfg.get("activation_dropout"):
        log.warning("activation_dropout %s: our FFN has no inner dropout (fine-tuning runs without it)",
                    cfg["activation_dropout"])  # fmt: skip
    return {
        "_target_": TARGET,
        "d_model": cfg["d_model"],
        "ffn_dim": ffn,
        "num_heads": heads,
        "encoder_layers": cfg["encoder_layers"],
        "decoder_layers": cfg["decoder_layers"],
        "dropout": float(cfg.get("dropout", 0.1)),
        "attention_dropout": float(cfg.get("attention_dropout", 0.0)),
        "activation": ACTIVATIONS[act],
        "norm_first": False,
        "positions": "sinusoidal_halves",
        "max_positions": int(cfg.get("max_position_embeddings", 512)),
        "tie_embeddings": True,
        "scale_embeddings": bool(cfg.get("scale_embedding", False)),
        "output_bias": True,
        "attention_backend": "auto",
    }


def id_map(marian_vocab: dict[str, int], cfg: dict, where: Path) -> tuple[list[int], list[str]]:
    """-> (our_to_marian, our pieces): our id i is Marian id our_to_marian[i] (BOS: the decoder start)."""
    size = cfg["vocab_size"]
    pieces = [None] * size
    for piece, i in marian_vocab.items():
        if not (isinstance(i, int) and 0 <= i < size) or pieces[i] is not None:
            raise MarianImportError(f"{where}: id {i!r} of {piece!r} is out of range or repeated (vocab_size "
                                    f"{size})")  # fmt: skip
        pieces[i] = piece
    if None in pieces:
        raise MarianImportError(f"{where}: no piece for id {pieces.index(None)} (vocab_size {size})")
    if UNK_PIECE not in marian_vocab:
        raise MarianImportError(f"{where}: no {UNK_PIECE} piece")
    if BOS_PIECE in marian_vocab:
        raise MarianImportError(f"{where}: holds {BOS_PIECE}, the piece our decoder start takes")
    pad, eos, unk = cfg["pad_token_id"], cfg["eos_token_id"], marian_vocab[UNK_PIECE]
    start = cfg.get("decoder_start_token_id", pad)
    if len({pad, eos, unk}) != 3:
        raise MarianImportError(f"{where}: pad, eos and unk ids {pad}, {eos}, {unk} are not distinct")
    rest = [i for i in range(size) if i not in (pad, unk, eos)]
    our_to_marian = [pad, unk, start, eos, *rest]
    ours = [PAD_PIECE, UNK_PIECE, BOS_PIECE, EOS_PIECE, *(pieces[i] for i in rest)]
    return our_to_marian, ours


def layer_map(n_enc: int, n_dec: int) -> dict[str, str]:
    """Our parameter name -> Marian's (without the "model." prefix), embeddings and output excluded."""
    names = {}
    parts = ("q_proj", "k_proj", "v_proj", "out_proj")
    for i in range(n_enc):
        ours, theirs = f"encoder_layers.{i}", f"encoder.layers.{i}"
        for p in parts:
            names[f"{ours}.self_attn.{p}"] = f"{theirs}.self_attn.{p}"
        names[f"{ours}.norm1"] = f"{theirs}.self_attn_layer_norm"
        names[f"{ours}.ffn.linear1"], names[f"{ours}.ffn.linear2"] = f"{theirs}.fc1", f"{theirs}.fc2"
        names[f"{ours}.norm2"] = f"{theirs}.final_layer_norm"
    for i in range(n_dec):
        ours, theirs = f"decoder_layers.{i}", f"decoder.layers.{i}"
        for p in parts:
            names[f"{ours}.self_attn.{p}"] = f"{theirs}.self_attn.{p}"
            names[f"{ours}.cross_attn.{p}"] = f"{theirs}.encoder_attn.{p}"
        names[f"{ours}.norm1"] = f"{theirs}.self_attn_layer_norm"
        names[f"{ours}.norm2"] = f"{theirs}.encoder_attn_layer_norm"
        names[f"{ours}.ffn.linear1"], names[f"{ours}.ffn.linear2"] = f"{theirs}.fc1", f"{theirs}.fc2"
        names[f"{ours}.norm3"] = f"{theirs}.final_layer_norm"
    return {f"{k}.{w}": f"{v}.{w}" for k, v in names.items() for w in ("weight", "bias")}


def state_dict(weights: dict[str, torch.Tensor], mc: dict, our_to_marian: list[int], where: Path) -> dict:
    """Marian's weights -> our Transformer's state_dict; every Marian weight must find its place."""
    w = {k.removeprefix("model."): v for k, v in weights.items()}
    used: set[str] = set()

    def take(name: str) -> torch.Tensor:
        if name not in w:
            raise MarianImportError(f"{where}: weight {name} is missing")
        used.add(name)
        return w[name].float()

    index = torch.tensor(our_to_marian)
    shared = take("shared.weight")
    for tied in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"):
        if tied in w:  # the same tensor saved under another name
            if not torch.equal(take(tied), shared):
                raise MarianImportError(f"{where}: {tied} differs from shared.weight (untied weights)")
    out = {"src_embedding.weight": shared[index], "output.bias": take("final_logits_bias").reshape(-1)[index]}
    out["tgt_embedding.weight"] = out["output.weight"] = out["src_embedding.weight"]
    for side in ("encoder", "decoder"):
        name = f"{side}.embed_positions.weight"
        if name in w:  # stored by some exports; never trained: it must be Marian's sinusoid table
            table = take(name)
            expected = sinusoid_table(table.size(0), table.size(1), halves=True)
            if table.shape[1] != mc["d_model"] or not torch.allclose(table, expected, atol=1e-4):
                raise MarianImportError(f"{where}: {name} is not Marian's sinusoids (learned positions?)")
    for ours, theirs in layer_map(mc["encoder_layers"], mc["decoder_layers"]).items():
        out[ours] = take(theirs)
    left = sorted(set(w) - used)
    if left:
        more = f" (and {len(left) - 1} more)" if len(left) > 1 else ""
        raise MarianImportError(f"{where}: weight {left[0]}{more} has no place in our Transformer")
    return out


def languages(directory: Path, source: str, src_lang: str | None, tgt_lang: str | None) -> tuple[str, str]:
    """The pair: the flags, else tokenizer_config.json's source_lang/target_lang, else opus-mt-xx-yy."""
    if src_lang and tgt_lang:
        return src_lang, tgt_lang
    tok_cfg = directory / "tokenizer_config.json"
    found = read_json(tok_cfg) if tok_cfg.is_file() else {}
    src, tgt = src_lang or found.get("source_lang"), tgt_lang or found.get("target_lang")
    name = OPUS_NAME.search(source.rstrip("/"))
    if name:
        src, tgt = src or name.group(1), tgt or name.group(2)
    if not (src and tgt):
        raise MarianImportError(f"{source}: cannot tell the language pair (no source_lang/target_lang in "
                                "tokenizer_config.json): pass --src-lang and --tgt-lang")  # fmt: skip
    return str(src), str(tgt)


def import_marian(
    source: str, *, src_lang: str | None = None, tgt_lang: str | None = None, data: dict | None = None,
    cache_dir: str | None = None,
) -> dict:
    """A Marian model directory (or hub id) -> a checkpoint payload (model, model_config, tokenizer, config).

    `data`: the data config to record (what `make eval` evaluates on); the language pair always comes from
    the model. Nothing is written here: translate.importer saves the payload atomically.
    """
    directory = fetch(source, cache_dir)
    cfg = read_json(directory / "config.json")
    mc = model_config(cfg, directory / "config.json")
    our_to_marian, pieces = id_map(read_json(directory / "vocab.json"), cfg, directory / "vocab.json")
    spm_files = {}
    for side, name in (("src", "source.spm"), ("tgt", "target.spm")):
        if not (directory / name).is_file():
            raise MarianImportError(f"{directory / name}: missing")
        spm_files[side] = (directory / name).read_bytes()
    try:
        tokenizer = Tokenizer(spm_files["src"], spm_files["tgt"], vocab=pieces)
    except ValueError as e:
        raise MarianImportError(f"{directory}: {e}") from None
    weights = state_dict(read_weights(directory), mc, our_to_marian, directory)
    src, tgt = languages(directory, source, src_lang, tgt_lang)
    data_cfg = {**(data or {}), "src_lang": src, "tgt_lang": tgt}
    generation = directory / "generation_config.json"
    generation_text = generation.read_text(encoding="utf-8") if generation.is_file() else ""
    return {
        "model": weights,
        "model_config": mc,
        "tokenizer": tokenizer.state_dict(),
        "config": {"data": data_cfg, "model": mc,
                   "marian": {"source": source, "config": json.dumps(cfg),
                              "generation": generation_text}},
        "step": 0,
    }  # fmt: skip


def marian_to_ours(our_to_marian: list[int]) -> list[int]:
    """For each Marian id, our id of it (the inverse of id_map's map, BOS left out): index our logits with
    it to get Marian's."""
    inverse = [0] * (len(our_to_marian) - 1)
    for ours, theirs in enumerate(our_to_marian):
        if ours != BOS_ID:
            inverse[theirs] = ours
    return inverse
