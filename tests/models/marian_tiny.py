"""A tiny MarianMTModel in the OPUS-MT directory layout, made in the test (nothing is downloaded).

SentencePiece models trained on the fixture corpus (Marian's layout: their own ids unk 0, <s> 1, </s> 2, no
pad), a vocab.json joining both sides' pieces as OPUS-MT's does (</s> 0, <unk> 1, ..., <pad> last), a
MarianConfig with random weights (larger than transformers' 0.02 init, so that the logits are far from
ties and searches are not decided by rounding) and an EOS bias so that some sentences end before the length
limit (a random decoder mostly runs on to it). As in OPUS-MT, the pad row of the embeddings is zero; its
output bias is -20, so the probability generate() gives pad before banning it is negligible (ours
normalizes without PAD, see translate/models/marian.py).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import sentencepiece as spm
import torch

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bible_tiny"


def fixture_pairs(split: str = "train") -> list[tuple[str, str]]:
    with gzip.open(FIXTURES / f"{split}.tsv.gz", "rt", encoding="utf-8") as f:
        return [(r["es"], r["en"]) for r in csv.DictReader(f, delimiter="\t")]


def train_spm(lines: list[str], vocab_size: int) -> bytes:
    out = io.BytesIO()
    spm.set_random_generator_seed(0)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=out, vocab_size=vocab_size, hard_vocab_limit=False,
        character_coverage=1.0, model_type="unigram", minloglevel=2, num_threads=1,
    )  # fmt: skip
    return out.getvalue()


def build_tiny_marian(directory: Path, *, d_model: int = 16, layers: int = 2, heads: int = 2, ffn: int = 32,
                      vocab: int = 120, eos_bias: float = 3.5, seed: int = 0, scale: float = 0.3) -> Path:
    """Write the model directory (save_pretrained layout plus source.spm, target.spm, vocab.json)."""
    from transformers import MarianConfig, MarianMTModel

    directory.mkdir(parents=True, exist_ok=True)
    pairs = fixture_pairs()
    protos = {"source.spm": train_spm([s for s, _ in pairs], vocab),
              "target.spm": train_spm([t for _, t in pairs], vocab)}  # fmt: skip
    pieces = ["</s>", "<unk>"]
    for proto in protos.values():
        proc = spm.SentencePieceProcessor()
        proc.load_from_serialized_proto(proto)
        for i in range(proc.get_piece_size()):
            p = proc.id_to_piece(i)
            if not proc.is_control(i) and not proc.is_unknown(i) and p not in pieces:
                pieces.append(p)
    pieces.append("<pad>")
    vocab_json = {p: i for i, p in enumerate(pieces)}
    pad = len(pieces) - 1
    config = MarianConfig(
        vocab_size=len(pieces), decoder_vocab_size=len(pieces), d_model=d_model, encoder_layers=layers,
        decoder_layers=layers, encoder_attention_heads=heads, decoder_attention_heads=heads,
        encoder_ffn_dim=ffn, decoder_ffn_dim=ffn, max_position_embeddings=512, activation_function="swish",
        scale_embedding=True, pad_token_id=pad, eos_token_id=0, decoder_start_token_id=pad,
        forced_eos_token_id=0, bad_words_ids=[[pad]], dropout=0.1, attention_dropout=0.0,
        activation_dropout=0.0, share_encoder_decoder_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = MarianMTModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "embed_positions" in name:
                continue
            if "layer_norm" in name and name.endswith("weight"):
                p.uniform_(0.5, 1.5)
            else:
                p.normal_(0.0, scale)
        bias = torch.randn(len(pieces)) * 0.5
        bias[0] += eos_bias  # </s>: some sentences end before the limit
        bias[pad] = -20.0
        model.model.shared.weight[pad].zero_()
        model.final_logits_bias.copy_(bias[None])
    model.save_pretrained(directory)
    for name, proto in protos.items():
        (directory / name).write_bytes(proto)
    (directory / "vocab.json").write_text(json.dumps(vocab_json, ensure_ascii=False), encoding="utf-8")
    (directory / "tokenizer_config.json").write_text(json.dumps({"source_lang": "es", "target_lang": "en"}))
    return directory


def marian_tokenizer(directory: Path, **kwargs):
    from transformers import MarianTokenizer

    files = [str(directory / name) for name in ("source.spm", "target.spm", "vocab.json")]
    return MarianTokenizer(*files, source_lang="es", target_lang="en", **kwargs)
