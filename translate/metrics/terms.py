"""Term success rate and repetition rate: what a glossary and the repetition controls are measured by.

  term_success(glossary_terms, sources, hypotheses[, references])  of the (sentence, term) pairs whose
      source holds the source term (as a whole word; with references, and whose reference holds the target
      term), the share whose translation holds the target term (as a whole word)
  repetition_rate(hypotheses, copies=3)              the share of outputs with one token or one bigram
      repeated `copies` or more times in a row (whitespace tokens), or one character 4+ times in a row
      ("kkkkkkeeee": no English word has that)
"""

from __future__ import annotations

import re
from collections.abc import Sequence

CHAR_RUN = re.compile(r"(\w)\1{3}")  # one letter or digit 4 times in a row


def has_word(text: str, term: str) -> bool:
    """Whether `term` occurs in `text` with no letter or digit right before or after it."""
    return re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text) is not None


def source_holds(text: str, term: str) -> bool:
    """As Glossary.constraints matches: the term, or (written in lower case) with its first letter upper."""
    return has_word(text, term) or (term[:1].islower() and has_word(text, term[0].upper() + term[1:]))


def term_success(
    terms: Sequence[tuple[str, str]], sources: Sequence[str], hypotheses: Sequence[str],
    references: Sequence[str] | None = None,
) -> tuple[int, int]:  # fmt: skip
    """-> (hits, occurrences): occurrences = (sentence, term) pairs whose source holds the source term (and,
    with references, whose reference holds the target term: the terms a reference-built glossary enforces)."""
    hits = total = 0
    refs = references if references is not None else [None] * len(sources)
    for src, hyp, ref in zip(sources, hypotheses, refs, strict=True):
        for s, t in terms:
            if source_holds(src, s) and (ref is None or has_word(ref, t)):
                total += 1
                hits += has_word(hyp, t)
    return hits, total


def repeats(tokens: Sequence[str], copies: int = 3) -> bool:
    """Whether one token or one bigram occurs `copies` or more times in a row."""
    for n in (1, 2):
        for i in range(len(tokens) - copies * n + 1):
            gram = tokens[i : i + n]
            if all(tokens[i + c * n : i + (c + 1) * n] == gram for c in range(1, copies)):
                return True
    return False


def repetition_rate(hypotheses: Sequence[str], copies: int = 3) -> float:
    """The share of hypotheses with a token or bigram repeated `copies`+ times in a row (0 for none)."""
    if not hypotheses:
        return 0.0
    looping = [repeats(h.split(), copies) or CHAR_RUN.search(h) is not None for h in hypotheses]
    return sum(looping) / len(hypotheses)
