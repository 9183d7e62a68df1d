"""Text to translation units and back: lines, sentences (pysbd), over-long sentences cut at their best
split points; nothing is dropped, and the translations are joined back in the same line structure.

  text -> lines (translate.data.lines.text_lines: split at "\\n" only; blank lines stay blank)
       -> sentences (pysbd for the source language; one sentence per unit when it fits)
       -> units: subword ids of at most `limit` pieces; a longer sentence is cut where a reader would pause
          (after . ; : ! ?, then after a comma or a closing bracket/quote, then between words, and only as a
          last resort inside a word), every cut as close to an even split as the boundaries allow.

Translations come back per unit and are joined with single spaces into sentences and lines; each line keeps
its leading whitespace (indentation; a tab or CR there becomes a space, so an output line stays one line with
no tab), and a blank input line gives a blank output line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from translate.data.lines import one_line

WORD_START = "\u2581"  # SentencePiece's word-start marker
STRONG = tuple(".;:!?\u2026")  # a clause ends before the next word
WEAK = tuple(",)]}\u00bb\"'\u201d")  # a phrase ends before the next word
BLOCK_CHARS = 2000  # pysbd reads at most this much at once (its time is quadratic): about 512 subwords
SENTENCE_END = re.compile(r"[.!?\u2026][\"'\u00bb\u201d)\]]*\s")


def _segmenter(lang: str):
    """A fresh pysbd Segmenter per call (about a microsecond): one keeps the text it is segmenting, so a
    shared one would mix up the texts of concurrent requests."""
    import pysbd

    try:
        return pysbd.Segmenter(language=lang, clean=False)
    except ValueError:  # pysbd has no rules for this language: the English ones are the usual fallback
        return pysbd.Segmenter(language="en", clean=False)


def blocks(line: str, size: int = BLOCK_CHARS) -> list[str]:
    """A long line -> consecutive pieces of at most `size` characters for pysbd, whose time grows with the
    square of its input (10,000 words: 6 s in one piece). Each piece ends at the last sentence end
    (. ! ? followed by a space) in its second half, else at the last space there, else at `size`."""
    out = []
    while len(line) > size:
        window = line[size // 2 : size]
        ends = [m.end() for m in SENTENCE_END.finditer(window)]
        cut = size // 2 + (ends[-1] if ends else window.rfind(" ") + 1 if " " in window else len(window))
        out.append(line[:cut])
        line = line[cut:]
    return out + [line]


def split_sentences(line: str, lang: str) -> list[str]:
    """One line (paragraph) -> its sentences, stripped; [] for a blank line."""
    if not line.strip():
        return []
    found = [s.strip() for block in blocks(line) for s in _segmenter(lang).segment(block)]
    return [s for s in found if s]


def boundary_rank(prev: str, piece: str) -> int:
    """How good a cut between two pieces is: 3 after . ; : ! ?, 2 after , or a closing mark, 1 between
    words, 0 inside a word."""
    if not piece.startswith(WORD_START):
        return 0
    if prev.endswith(STRONG):
        return 3
    if prev.endswith(WEAK):
        return 2
    return 1


def cut_points(pieces: list[str], limit: int) -> list[int]:
    """Indices i (0 < i < len) where a sequence of pieces is cut so that every part has <= limit pieces.

    Greedy from the left: with n = ceil(rest / limit) parts still needed, the next cut may fall anywhere
    that leaves the rest cuttable into n - 1 parts; it takes the best boundary_rank there, penalised by its
    distance from the even split rest / n (1.5 ranks per `limit` pieces away), so a comma near the middle
    beats a word boundary at the middle, and a sentence end a little further away beats both. When that
    range holds only cuts inside words, the cut may come earlier (one part more) to fall between words.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    cuts, start, total = [], 0, len(pieces)
    while total - start > limit:
        rest = total - start
        parts = -(-rest // limit)  # ceil
        ideal = start + rest / parts
        lo, hi = max(start + 1, total - (parts - 1) * limit), start + limit

        def score(i: int, ideal: float = ideal) -> tuple[float, float]:
            return boundary_rank(pieces[i - 1], pieces[i]) - 1.5 * abs(i - ideal) / limit, -abs(i - ideal)

        window = range(lo, hi + 1)
        if all(boundary_rank(pieces[i - 1], pieces[i]) == 0 for i in window):
            window = range(start + 1, hi + 1)  # rather one part more than a cut inside a word
        best = max(window, key=score)
        cuts.append(best)
        start = best
    return cuts


def cut(ids: list[int], pieces: list[str], limit: int) -> list[list[int]]:
    """Subword ids -> parts of at most `limit` ids (their concatenation is `ids`), cut by cut_points."""
    bounds = [0, *cut_points(pieces, limit), len(ids)]
    return [ids[a:b] for a, b in zip(bounds, bounds[1:])]


@dataclass
class Plan:
    """What to translate for a list of lines, and where each translation goes back.

    units: subword ids of every unit (no EOS), in reading order; layout[line][sentence] = the indices of that
    sentence's units; sentences[line] = the sentence texts; leads[line] = the line's leading whitespace.
    """

    lines: list[str]
    units: list[list[int]] = field(default_factory=list)
    layout: list[list[list[int]]] = field(default_factory=list)
    sentences: list[list[str]] = field(default_factory=list)
    leads: list[str] = field(default_factory=list)
    cut_sentences: int = 0  # sentences longer than the limit, translated in several units

    def join(self, unit_texts: list[str]) -> list[str]:
        """One translated text per unit -> one output line per input line."""
        out = []
        for lead, sents in zip(self.leads, self.layout):
            texts = [unit_texts[u].strip() for sent in sents for u in sent]
            text = " ".join(t for t in texts if t)
            out.append(lead + text if text else "")
        return out


def plan(lines: list[str], tokenizer, lang: str, limit: int) -> Plan:
    """Lines -> Plan: each line split into sentences, each sentence encoded and cut to <= limit subwords."""
    p = Plan(lines=list(lines))
    for line in p.lines:
        sents = split_sentences(line, lang)
        p.leads.append(one_line(line[: len(line) - len(line.lstrip())]) if sents else "")  # tabs -> spaces
        p.sentences.append(sents)
        layout = []
        for sent in sents:
            ids = tokenizer.encode(sent, "src")
            if not ids:  # nothing the tokenizer can read: an empty translation
                continue
            parts = [ids]
            if len(ids) > limit:
                parts = cut(ids, tokenizer.encode_pieces(sent, "src"), limit)
                p.cut_sentences += 1
            layout.append(list(range(len(p.units), len(p.units) + len(parts))))
            p.units.extend(parts)
        p.layout.append(layout)
    return p
