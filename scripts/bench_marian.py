"""The pieces of `bench_decode.py --marian`: an OPUS-MT-sized MarianMTModel with random weights, and
transformers' generate() behind the engines' translate_ids call.

The model has OPUS-MT's real size (6+6 layers, d 512, 8 heads, FFN 2048, swish, a vocabulary of 58,101 with
pad last, as opus-mt-es-en): two SentencePiece models trained on the embedded corpus cut the text, and
vocab.json holds their pieces padded with unused filler pieces up to that size, so the output layer costs
what OPUS-MT's does. Random weights never choose </s>: every engine decodes every sentence to the same fixed
length limit (max_len_a 0, max_len_b), a fair test of speed per token. Nothing is downloaded.

Settings on the generate() side, mapped from SearchConfig as tests/models/test_marian.py proves them equal:
num_beams = beam_size, length_penalty 0 = alpha 0, max_new_tokens = max_len_b + 1 with forced_eos_token_id,
bad_words_ids [[pad]], early_stopping False; batches are the same token batches ours makes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

OPUS_SIZE = dict(d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
                 decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048)  # fmt: skip
OPUS_VOCAB = 58101  # opus-mt-es-en's vocab_size (pad included)


def build_opus_sized(directory: Path, corpus_lines: tuple[list[str], list[str]], seed: int = 0) -> Path:
    """Write a random-weight OPUS-MT-sized model directory (transformers layout) and return it."""
    import io

    import sentencepiece as spm
    from transformers import MarianConfig, MarianMTModel

    if (directory / "config.json").is_file():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    pieces = ["</s>", "<unk>"]
    for name, lines in zip(("source.spm", "target.spm"), corpus_lines):
        out = io.BytesIO()
        spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=out, vocab_size=8000,
                                       hard_vocab_limit=False, minloglevel=2)  # fmt: skip
        (directory / name).write_bytes(out.getvalue())
        proc = spm.SentencePieceProcessor()
        proc.load_from_serialized_proto(out.getvalue())
        pieces += [proc.id_to_piece(i) for i in range(proc.get_piece_size())
                   if not (proc.is_control(i) or proc.is_unknown(i)) and proc.id_to_piece(i) not in pieces]
    pieces += [f"<unused{i}>" for i in range(OPUS_VOCAB - 1 - len(pieces))] + ["<pad>"]
    (directory / "vocab.json").write_text(json.dumps({p: i for i, p in enumerate(pieces)}), encoding="utf-8")
    (directory / "tokenizer_config.json").write_text(json.dumps({"source_lang": "es", "target_lang": "en"}))
    pad = len(pieces) - 1
    config = MarianConfig(vocab_size=len(pieces), decoder_vocab_size=len(pieces), max_position_embeddings=512,
                          activation_function="swish", scale_embedding=True, pad_token_id=pad, eos_token_id=0,
                          decoder_start_token_id=pad, forced_eos_token_id=0, bad_words_ids=[[pad]],
                          **OPUS_SIZE)  # fmt: skip
    torch.manual_seed(seed)
    MarianMTModel(config).save_pretrained(directory)
    return directory


class GenerateEngine:
    """transformers' MarianMTModel.generate() with translate_ids' shape: our source ids in, our ids out."""

    name = "hf"

    def __init__(self, model_dir: str, checkpoint: str):
        from transformers import MarianMTModel

        from translate.data.tokenizer import Tokenizer
        from translate.models.checkpoint import load_checkpoint
        from translate.models.marian import id_map, marian_to_ours, read_json

        self.model = MarianMTModel.from_pretrained(model_dir).eval()
        cfg = read_json(Path(model_dir) / "config.json")
        our_to_marian, _ = id_map(read_json(Path(model_dir) / "vocab.json"), cfg, Path(model_dir))
        self.to_marian, self.to_ours = our_to_marian, marian_to_ours(our_to_marian)
        self.tokenizer = Tokenizer.from_state_dict(load_checkpoint(checkpoint)["tokenizer"])
        self.pad, self.eos = cfg["pad_token_id"], cfg["eos_token_id"]

    def translate_ids(self, src_ids, search, **_):
        from translate.data.batching import TokenBatchSampler
        from translate.search.beam import Hypothesis

        assert search.max_len_a == 0, "bench: one length limit for generate() and ours (max_len_a 0)"
        out = [None] * len(src_ids)
        sampler = TokenBatchSampler([len(r) + 1 for r in src_ids], search.max_tokens, shuffle=False, seed=0)
        for idx in sampler.all_batches(0)[::-1]:
            width = max(len(src_ids[i]) for i in idx) + 1
            ids = torch.full((len(idx), width), self.pad)
            for row, i in enumerate(idx):
                marian = [self.to_marian[t] for t in src_ids[i]] + [self.eos]
                ids[row, : len(marian)] = torch.tensor(marian)
            with torch.no_grad():
                gen = self.model.generate(
                    input_ids=ids, attention_mask=ids.ne(self.pad), num_beams=search.beam_size,
                    do_sample=False,
                    max_new_tokens=search.max_len_b + 1, length_penalty=0.0, early_stopping=False,
                    forced_eos_token_id=self.eos, bad_words_ids=[[self.pad]],
                )  # fmt: skip
            for i, row in zip(idx, gen.tolist()):
                row = row[1:]
                row = row[: row.index(self.eos)] if self.eos in row else row
                out[i] = [Hypothesis([self.to_ours[t] for t in row if t != self.pad], math.nan)]
        return out
