"""SentencePiece subwords: one joint model or one per language, trained on the training split only.

The serialized model protos travel inside checkpoints (state_dict() holds bytes), so `translate` needs no
separate tokenizer file. Trained models are cached under cache_dir by a hash of the training text and the
settings: a rerun with the same corpus and config loads the model instead of retraining it.

A third kind holds two SentencePiece models that share one id space given by a vocabulary (`vocab`, the
piece of every id), as Marian / OPUS-MT models do (source.spm, target.spm, vocab.json): each side cuts text
into pieces with its own model and the vocabulary numbers them (a piece it lacks is UNK); the SentencePiece
models' own ids are not used, so their special ids need not be ours. Like MarianTokenizer, it keeps a
leading ">>xx<<" language token (multilingual OPUS-MT targets) whole before SentencePiece cuts the rest.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import sentencepiece as spm

from translate.data.errors import DataError
from translate.data.vocab import BOS_ID, BOS_PIECE, EOS_ID, EOS_PIECE, PAD_ID, PAD_PIECE, UNK_ID, UNK_PIECE
from translate.files import write_bytes

log = logging.getLogger(__name__)

SIDES = ("src", "tgt")
STATE_VERSION = 1
SPECIAL_PIECES = (PAD_PIECE, UNK_PIECE, BOS_PIECE, EOS_PIECE)  # at PAD_ID, UNK_ID, BOS_ID, EOS_ID


class Tokenizer:
    """Wraps one joint (shared=True) or two per-language SentencePiece models with the fixed special ids;
    or, with `vocab`, two SentencePiece models numbered by one shared vocabulary (Marian's layout)."""

    def __init__(self, src_model: bytes, tgt_model: bytes | None = None, vocab: Sequence[str] | None = None):
        self.shared = tgt_model is None
        self._protos = {"src": bytes(src_model), "tgt": bytes(src_model if tgt_model is None else tgt_model)}
        self.vocab = None if vocab is None else _checked_vocab(vocab)
        fixed_ids = self.vocab is None  # with a vocabulary the SentencePiece ids are never used
        self._procs = {"src": _processor(self._protos["src"], fixed_ids)}
        self._procs["tgt"] = self._procs["src"] if self.shared else _processor(self._protos["tgt"], fixed_ids)
        if self.vocab is not None:
            self._ids = {piece: i for i, piece in enumerate(self.vocab)}
            self.src_vocab_size = self.tgt_vocab_size = len(self.vocab)
        else:
            self.src_vocab_size = self._procs["src"].get_piece_size()
            self.tgt_vocab_size = self._procs["tgt"].get_piece_size()

    @property
    def shared_vocab(self) -> bool:
        """One id space for both sides (a joint model, or a shared vocabulary): the models may then tie the
        source embedding to the target's."""
        return self.shared or self.vocab is not None

    @property
    def fingerprint(self) -> str:
        """Hash of the model protos (and the vocabulary): keys the on-disk cache of encoded datasets."""
        h = hashlib.sha256(b"joint" if self.shared else b"split")
        for side in SIDES:
            h.update(self._protos[side])
        if self.vocab is not None:
            h.update(b"\x00vocab\x00" + "\n".join(self.vocab).encode("utf-8"))
        return h.hexdigest()[:16]

    def _proc(self, side: str) -> spm.SentencePieceProcessor:
        if side not in SIDES:
            raise ValueError(f"side must be 'src' or 'tgt', got {side!r}")
        return self._procs[side]

    def encode(self, text: str, side: str) -> list[int]:
        """Subword ids of one sentence, without BOS/EOS (batching adds them)."""
        if self.vocab is not None:
            return [self._ids.get(p, UNK_ID) for p in self.encode_pieces(text, side)]
        return self._proc(side).encode(text, out_type=int)

    def encode_batch(self, texts: Sequence[str], side: str) -> list[list[int]]:
        if self.vocab is not None:
            return [self.encode(t, side) for t in texts]
        return self._proc(side).encode(list(texts), out_type=int)

    def encode_pieces(self, text: str, side: str) -> list[str]:
        """Piece strings (e.g. '▁the'): alignment plot labels, and where translate.service.segment cuts."""
        if self.vocab is not None:  # MarianTokenizer.remove_language_code: a leading >>xx<< stays whole
            end = text.find("<<") if text.startswith(">>") else -1
            code, text = ([text[: end + 2]], text[end + 2 :]) if end != -1 else ([], text)
            return code + self._proc(side).encode(text, out_type=str)
        return self._proc(side).encode(text, out_type=str)

    def decode(self, ids: Iterable[int], side: str) -> str:
        """Text of ids up to the first EOS; PAD and BOS are dropped."""
        kept = []
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i not in (PAD_ID, BOS_ID):
                kept.append(i)
        if self.vocab is not None:
            return self._proc(side).decode_pieces([self.vocab[i] for i in kept])
        return self._proc(side).decode(kept)

    def id_to_piece(self, i: int, side: str) -> str:
        if self.vocab is not None:
            self._proc(side)  # the same error for a wrong side
            return self.vocab[int(i)]
        return self._proc(side).id_to_piece(int(i))

    def state_dict(self) -> dict:
        """Plain values only (str/int/bool/bytes): safe for torch.load(weights_only=True).

        A joint tokenizer stores no "tgt_model" key (an empty bytes object would pickle as a call to
        `bytes`, which weights_only refuses); one with a shared vocabulary stores it as "vocab" (a str list).
        """
        d = {"version": STATE_VERSION, "shared": self.shared, "src_model": self._protos["src"]}
        if not self.shared:
            d["tgt_model"] = self._protos["tgt"]
        if self.vocab is not None:
            d["vocab"] = list(self.vocab)
        return d

    @classmethod
    def from_state_dict(cls, d: dict) -> Tokenizer:
        """The inverse of state_dict(); a malformed state (it may come from any file) is a DataError."""
        if not isinstance(d, Mapping):
            raise DataError(f"tokenizer state: expected a mapping, found {type(d).__name__}")
        if d.get("version") != STATE_VERSION:
            raise DataError(f"tokenizer state: unsupported version {d.get('version')!r}")
        if not isinstance(d.get("shared"), bool):
            found = type(d.get("shared")).__name__
            raise DataError(f"tokenizer state: 'shared' should be a bool, found {found}")
        for key in ("src_model",) if d["shared"] else ("src_model", "tgt_model"):
            if not isinstance(d.get(key), bytes):
                found = type(d.get(key)).__name__
                raise DataError(f"tokenizer state: {key!r} should be bytes, found {found}")
        vocab = d.get("vocab")
        if vocab is not None and not (isinstance(vocab, list) and all(isinstance(p, str) for p in vocab)):
            raise DataError(f"tokenizer state: 'vocab' should be a list of str, found {type(vocab).__name__}")
        return cls(d["src_model"], None if d["shared"] else d["tgt_model"], vocab)

    def __repr__(self) -> str:
        kind = "joint" if self.shared else "per-language"
        kind += "" if self.vocab is None else " with a shared vocabulary"
        return f"Tokenizer({kind}, src_vocab={self.src_vocab_size}, tgt_vocab={self.tgt_vocab_size})"


def _checked_vocab(vocab: Sequence[str]) -> list[str]:
    """The piece of every id: ours at the special ids, each piece once."""
    vocab = list(vocab)
    if tuple(vocab[: len(SPECIAL_PIECES)]) != SPECIAL_PIECES:
        raise DataError(f"tokenizer vocabulary: ids 0-3 are {vocab[:4]}, expected {list(SPECIAL_PIECES)}")
    if len(set(vocab)) != len(vocab):
        seen: set[str] = set()
        twice = next(p for p in vocab if p in seen or seen.add(p))
        raise DataError(f"tokenizer vocabulary: piece {twice!r} appears more than once")
    return vocab


def _processor(proto: bytes, fixed_ids: bool = True) -> spm.SentencePieceProcessor:
    proc = spm.SentencePieceProcessor()
    try:
        proc.load_from_serialized_proto(proto)
    except (RuntimeError, OSError) as e:
        raise DataError(f"tokenizer: not a SentencePiece model ({e})") from None
    fixed = (proc.pad_id(), proc.unk_id(), proc.bos_id(), proc.eos_id())
    if fixed_ids and fixed != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
        raise DataError(f"tokenizer: special ids (pad, unk, bos, eos) are {fixed}, expected (0, 1, 2, 3)")
    return proc


def _settings(tok_cfg) -> dict:
    """The settings that change the trained model (hashed into the cache key)."""
    model_type = str(tok_cfg.model_type)
    if model_type not in ("unigram", "bpe"):
        raise DataError(f"data.tokenizer.model_type: expected unigram or bpe, got {model_type!r}")
    return {
        "model_type": model_type,
        "vocab_size": int(tok_cfg.vocab_size),
        "joint": bool(tok_cfg.joint),
        "character_coverage": float(tok_cfg.character_coverage),
        "input_sentence_size": int(tok_cfg.input_sentence_size),
        "seed": int(tok_cfg.seed),
    }


def corpus_key(src: Sequence[str], tgt: Sequence[str], settings: dict) -> str:
    """Hash of the training text and the settings: the cache key of the trained models."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for side in (src, tgt):
        h.update(b"\x00side\x00")
        for line in side:
            h.update(line.encode("utf-8"))
            h.update(b"\n")
    return h.hexdigest()[:16]


def _train_proto(sentences: Sequence[str], s: dict) -> bytes:
    """Train one SentencePiece model quietly, in memory, with the fixed special ids."""
    spm.set_random_generator_seed(s["seed"])
    out = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=out,
            model_type=s["model_type"],
            vocab_size=s["vocab_size"],
            hard_vocab_limit=False,  # a tiny corpus yields a smaller vocabulary instead of an error
            character_coverage=s["character_coverage"],
            input_sentence_size=s["input_sentence_size"],
            shuffle_input_sentence=True,
            num_threads=min(16, os.cpu_count() or 1),
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            pad_piece=PAD_PIECE,
            unk_piece=UNK_PIECE,
            bos_piece=BOS_PIECE,
            eos_piece=EOS_PIECE,
            minloglevel=2,
        )
    except RuntimeError as e:
        raise DataError(f"sentencepiece training failed: {e}") from None
    return out.getvalue()


def train_tokenizer(
    src: Sequence[str], tgt: Sequence[str], tok_cfg, cache_dir: str | Path, corpus: str | None = None
) -> tuple[Tokenizer, dict]:
    """Train (or load from cache_dir/spm/) the tokenizer for these training sentences.

    `corpus` is a content hash of the full training split when src/tgt are a sample of it (the cache key
    then hashes it instead of the sample). Returns the tokenizer and {"cached", "key", "seconds"}.
    """
    s = _settings(tok_cfg)
    if corpus is None:
        key = corpus_key(src, tgt, s)
    else:
        key = hashlib.sha256(f"{corpus}-{json.dumps(s, sort_keys=True)}".encode()).hexdigest()[:16]
    base = Path(cache_dir) / "spm"
    names = ["joint"] if s["joint"] else ["src", "tgt"]
    paths = {n: base / f"{key}.{n}.model" for n in names}
    t0 = time.perf_counter()
    cached = all(p.exists() for p in paths.values())
    if cached:
        log.info("tokenizer: reusing %s", ", ".join(str(p) for p in paths.values()))
        protos = {n: p.read_bytes() for n, p in paths.items()}
    else:
        kind = "joint" if s["joint"] else "per-language"
        log.info("tokenizer: training %s %s (vocab %d) on %d pairs", kind, s["model_type"], s["vocab_size"],
                 len(src))
        if s["joint"]:
            protos = {"joint": _train_proto(list(src) + list(tgt), s)}
        else:
            protos = {"src": _train_proto(src, s), "tgt": _train_proto(tgt, s)}
        for n, p in paths.items():
            write_bytes(p, protos[n])
    tok = Tokenizer(protos["joint"]) if s["joint"] else Tokenizer(protos["src"], protos["tgt"])
    return tok, {"cached": cached, "key": key, "seconds": time.perf_counter() - t0}
