"""Glossaries: source term -> target term pairs, turned into the constraints of lexically constrained beam
search (constrained.py) for the sentences whose source holds the term.

  read_glossary(path)          a TSV file: `source<TAB>target` per line; blank lines and `#` comments skipped
  glossary_from_value(value)   a request's glossary: {"source": "target", ...} or [["source", "target"], ...]
  Glossary.constraints(tokenizer, units)
                               per unit (source subword ids) the target ids of every term it holds

A source term holds in a unit when its subword ids appear there as whole words (the piece after it starts a
new word or is not a letter or digit); a term written in lower case also matches with its first letter
upper-cased (the start of a sentence). The target term is produced as written, as whole words: no piece that
would continue its last word may follow it ("God" never becomes "Gods").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from translate.search.constrained import Term

WORD_START = "\u2581"  # SentencePiece's word-start marker


class GlossaryError(ValueError):
    """A glossary that cannot be read: the message names the file and line (or the request field)."""


@dataclass(frozen=True)
class Glossary:
    terms: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for src, tgt in self.terms:
            if seen.get(src, tgt) != tgt:
                raise GlossaryError(f"source term {src!r} has two targets: {seen[src]!r} and {tgt!r}")
            seen[src] = tgt

    def __len__(self) -> int:
        return len(self.terms)

    def constraints(self, tokenizer, units: Sequence[Sequence[int]]) -> list[list[Term]]:
        """Per unit, the target ids of each term whose source side it holds (in glossary order, each once),
        as Terms that no piece continuing their last word may follow."""
        if not self.terms:
            return [[] for _ in units]
        glue = word_continuations(tokenizer)
        encoded = []
        for src, tgt in self.terms:
            variants = {src, src[0].upper() + src[1:]} if src[0].islower() else {src}
            forms = [tokenizer.encode(v, "src") for v in sorted(variants)]
            target = tokenizer.encode(tgt, "tgt")
            encoded.append(([f for f in forms if f], Term(target, glue) if target else None))
        pieces = _piece_lookup(tokenizer)
        out = []
        for unit in units:
            found: list[list[int]] = []
            for forms, tgt in encoded:
                if tgt and tgt not in found and any(holds(unit, f, pieces) for f in forms):
                    found.append(tgt)
            out.append(found)
        return out


def word_continuations(tokenizer) -> list[int]:
    """Target ids whose piece continues the word before it (no word-start mark, a letter or digit first)."""
    out = []
    for i in range(tokenizer.tgt_vocab_size):
        piece = tokenizer.id_to_piece(i, "tgt")
        if not piece.startswith(WORD_START) and piece[:1].isalnum():
            out.append(i)
    return out


def _piece_lookup(tokenizer):
    cache: dict[int, str] = {}

    def piece(i: int) -> str:
        if i not in cache:
            cache[i] = tokenizer.id_to_piece(i, "src")
        return cache[i]

    return piece


def holds(unit: Sequence[int], term: Sequence[int], piece) -> bool:
    """Whether the ids `term` occur in `unit` as whole words (piece(id) -> its SentencePiece piece)."""
    n = len(term)
    for i in range(len(unit) - n + 1):
        if list(unit[i : i + n]) != list(term):
            continue
        if i + n == len(unit):
            return True
        after = piece(unit[i + n])
        first = after[1:2] if after.startswith(WORD_START) else after[:1]
        if after.startswith(WORD_START) or not first.isalnum():
            return True
    return False


def read_glossary(path: str | Path) -> Glossary:
    """A TSV glossary file -> Glossary; GlossaryError names the file and line of a bad entry."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise GlossaryError(f"{path}: no such glossary file") from None
    except UnicodeDecodeError as e:
        raise GlossaryError(f"{path}: not UTF-8 (byte {e.start})") from None
    except OSError as e:
        raise GlossaryError(f"{path}: cannot read ({e.strerror})") from None
    terms = []
    for n, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise GlossaryError(f"{path}:{n}: expected 'source<TAB>target', got {line[:60]!r}")
        terms.append((parts[0].strip(), parts[1].strip()))
    try:
        return Glossary(tuple(terms))
    except GlossaryError as e:
        raise GlossaryError(f"{path}: {e}") from None


def glossary_from_value(value, field: str = "glossary") -> Glossary:
    """A request's glossary ({"src": "tgt"} or [["src", "tgt"], ...]) -> Glossary; GlossaryError names
    the field."""
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list) and all(isinstance(p, list) and len(p) == 2 for p in value):
        pairs = [tuple(p) for p in value]
    else:
        raise GlossaryError(f'{field} must be an object {{"source": "target"}} or a list of [source, target]')
    for src, tgt in pairs:
        if not (isinstance(src, str) and isinstance(tgt, str) and src.strip() and tgt.strip()):
            raise GlossaryError(f"{field}: terms must be non-empty strings, got {src!r} -> {tgt!r}")
    try:
        return Glossary(tuple((s.strip(), t.strip()) for s, t in pairs))
    except GlossaryError as e:
        raise GlossaryError(f"{field}: {e}") from None
