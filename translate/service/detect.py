"""Language detection for POST /detect and source "auto": Lingua (lingua-language-detector), restricted to
the languages this server has models for, offline (its models ship in the wheel).

Why Lingua: of the offline detectors that ship their own models, it was by far the most accurate here on
single words (71% against 45-49%), where LibreTranslate users report most errors, within 2 points of the best
on 2-3 words and whole sentences, and it is restricted to a set of languages before it decides; langdetect
(LibreTranslate's, a port of Google's n-gram profiles) is random unless seeded and weak on short texts;
py3langid (langid.py) is small and fast, 1.5-2 points better on 2-3 words, but right on 45% of single words.
Measured: scripts/bench_detect.py, figures in translate/service/README.md.

  Detector(codes).detect(text)     -> [{"language", "confidence"}], best first, confidence 0-100
  Detector(codes).detect_all(texts) -> one ranked list for all texts together (LibreTranslate's /detect
                                       with a list: each language's confidence averaged, weighted by length)

Text with nothing to detect (digits, emoji, blank) gives [{"language": en (or the first code), confidence 0}],
as LibreTranslate answers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from lingua import IsoCode639_1, Language, LanguageDetectorBuilder


def lingua_language(code: str) -> Language | None:
    try:
        return Language.from_iso_code_639_1(IsoCode639_1.from_str(code))
    except ValueError:
        return None


class Detector:
    def __init__(self, codes: Iterable[str]):
        self.codes = sorted(set(codes))
        if not self.codes:
            raise ValueError("a Detector needs at least one language")
        known = {c: lingua_language(c) for c in self.codes}
        self.known = {c: lang for c, lang in known.items() if lang is not None}
        self._code_of = {lang: c for c, lang in self.known.items()}
        self._lingua = None
        if len(self.known) >= 2:  # with one language there is nothing to decide
            self._lingua = LanguageDetectorBuilder.from_languages(*self.known.values()).build()
        self._lock = threading.Lock()
        self.fallback = "en" if "en" in self.codes else self.codes[0]

    def detect(self, text: str) -> list[dict]:
        if self._lingua is None:
            only = next(iter(self.known), self.codes[0])
            return [{"language": only, "confidence": 100.0 if any(ch.isalpha() for ch in text) else 0.0}]
        with self._lock:
            values = self._lingua.compute_language_confidence_values(text)
        found = [{"language": self._code_of[v.language], "confidence": round(100 * v.value, 1)}
                 for v in values if v.value > 0]  # fmt: skip
        return found or [{"language": self.fallback, "confidence": 0.0}]

    def detect_all(self, texts: list[str]) -> list[dict]:
        total: dict[str, float] = {}
        weight = 0
        for text in texts:
            n = max(1, len(text))
            weight += n
            for c in self.detect(text):
                total[c["language"]] = total.get(c["language"], 0.0) + n * c["confidence"]
        ranked = sorted(total.items(), key=lambda kv: -kv[1])
        found = [{"language": c, "confidence": round(v / weight, 1)} for c, v in ranked if v > 0]
        return found or [{"language": self.fallback, "confidence": 0.0}]
