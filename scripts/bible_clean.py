"""Turn the OSIS markup of a SWORD verse into clean plain text.

Pure functions on strings, so the cleaning is tested without the SWORD modules installed.

Both Bible modules (spaRV1909eb, engWEB2015eb) wrap words in `<w lemma="strong:...">` elements. The WEB
drops a footnote between two words with no whitespace around it (`God</w><note>...</note><w>created`),
so deleting markup naively glues words together ("Godcreated"). Here every removed tag leaves a *boundary*
that becomes a space only when the characters on both sides need one (a letter after a letter, a word
after a closing quote, ...), and never before punctuation. Tags that only decorate part of a word
(`preguntándo<transChange>le</transChange>` in RV1909) leave no boundary.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping

# Elements dropped together with their content: footnotes and cross references, speaker labels
# (Song of Songs), non-canonical headings. Psalm superscriptions are `<title canonical="true">`: they
# are scripture (RV1909 has them as plain text in verse 1), so their text is kept.
_DROP_WITH_CONTENT = {"note", "speaker", "title", "catchWord", "rdg", "reference", "seg"}
# Elements whose content is kept and whose tags may sit inside a word: they leave no boundary.
_INLINE = {"transChange", "q", "name", "hi", "foreign", "divineName", "inscription", "added"}

_TAG = re.compile(r"<(/?)([A-Za-z][\w:-]*)((?:\s[^>]*)?)(/?)>")
_ATTR = re.compile(r'([\w:-]+)="([^"]*)"')
_BOUNDARY = "\x00"
_BOUNDARY_RUN = re.compile(_BOUNDARY + "+")
_SPACES = re.compile(r"\s+")

# A boundary becomes a space when the character before may end a word and the one after may start one.
_ENDS_WORD = set(".,;:!?”’)]»")
_STARTS_WORD = set("“‘([¿¡«")


def _needs_space(before: str, after: str) -> bool:
    if before.isspace() or after.isspace():
        return False
    if after.isdigit() and before in ",.:":  # 1,000 and 3:16 stay whole
        return False
    return (before.isalnum() or before in _ENDS_WORD) and (after.isalnum() or after in _STARTS_WORD)


def _join_boundaries(text: str) -> str:
    def repl(m: re.Match) -> str:
        s, e = m.start(), m.end()
        if s == 0 or e == len(text):
            return ""
        return " " if _needs_space(text[s - 1], text[e]) else ""

    return _BOUNDARY_RUN.sub(repl, text)


def _ends_book(name: str, attrs: dict[str, str]) -> bool:
    """The WEB appends its glossary after the closing `<div type="book"/>` of Revelation."""
    return name == "div" and (
        (attrs.get("type") == "book" and "eID" in attrs) or attrs.get("type") == "glossary"
    )


def strip_osis(raw: str) -> str:
    """OSIS verse -> text with markup removed and word spacing repaired (no other normalisation)."""
    out: list[str] = []
    skip_name: str | None = None  # inside a dropped element: its name and nesting depth
    skip_depth = 0
    pos = 0
    for m in _TAG.finditer(raw):
        if skip_name is None:
            out.append(raw[pos : m.start()])
        pos = m.end()
        closing, name, attr_text, self_closing = m.group(1) == "/", m.group(2), m.group(3), m.group(4) == "/"
        attrs = dict(_ATTR.findall(attr_text))
        if skip_name is not None:
            if name == skip_name and not self_closing:
                skip_depth += -1 if closing else 1
                if skip_depth == 0:
                    skip_name = None
            continue
        if _ends_book(name, attrs):
            pos = len(raw)
            break
        if name in _INLINE:
            continue
        out.append(_BOUNDARY)
        keep_title = name == "title" and attrs.get("canonical") == "true"
        if name in _DROP_WITH_CONTENT and not keep_title and not closing and not self_closing:
            skip_name, skip_depth = name, 1
    if skip_name is None:
        out.append(raw[pos:])
    return _join_boundaries("".join(out))


def normalize_text(text: str) -> str:
    """Decode HTML entities, NFC, one space between words, no space before , ; : . ! ? ) or after (."""
    text = unicodedata.normalize("NFC", html.unescape(text))
    text = _SPACES.sub(" ", text).strip()
    text = re.sub(r" +([,;:.!?)\]])", r"\1", text)
    return re.sub(r"([(\[¿¡]) +", r"\1", text)


_UPPER = "".join(chr(c) for c in range(0x41, 0x250) if chr(c).isupper())  # Latin letters, any accent
_WORD = re.compile(r"[^\W\d_]+")
# A run of all-capital words (single letters allowed, e.g. "Y", "Á") with at least one of 2+ letters,
# starting at the verse start or at a sentence start (after a Psalm superscription).
_CAPS_RUN = re.compile(rf"(?:^|(?<=[.:;!?]\s))([¡¿(\"“‘]*)((?:[{_UPPER}]+\s)*[{_UPPER}]{{2,}})(?![^\W\d_])")
_SENTENCE_END = re.compile(r"[.:;!?]\W*$")


def casing_table(texts: Iterable[str]) -> dict[str, str]:
    """Words usually written capitalised inside a sentence (names): lower-case form -> capitalised form.

    Counts only words that are neither sentence-initial nor all capitals, so the table says how the
    corpus writes a word where case carries meaning ("Jehová", "David", but "aconteció", "yo").
    """
    lower: Counter[str] = Counter()
    capital: Counter[str] = Counter()
    for text in texts:
        prev_end = 0
        for m in _WORD.finditer(text):
            word = m.group(0)
            initial = prev_end == 0 or _SENTENCE_END.search(text[: m.start()]) is not None
            prev_end = m.end()
            if initial or (word.isupper() and len(word) > 1):
                continue
            if word.islower():
                lower[word] += 1
            elif word[0].isupper() and word[1:].islower():
                capital[word.lower()] += 1
    return {w: w[0].upper() + w[1:] for w, n in capital.items() if n > lower[w]}


def fix_opening_capitals(text: str, casing: Mapping[str, str]) -> str:
    """RV1909 prints the opening words of each chapter in capitals ("EN el principio", "Y ACONTECIÓ").

    Only the first run of all-capital words that starts the verse (or the sentence after a Psalm
    superscription) is changed: its first word gets sentence case, later words take the case the
    corpus uses for them elsewhere (`casing_table`), so "Y DAVID huyó" -> "Y David huyó" and
    "Y Á SUS discípulos" -> "Y á sus discípulos". Capitals later in the verse (inscriptions such as
    "YO SOY EL QUE SOY", place names) are left alone. Apply to the first verse of a chapter only.
    """
    m = _CAPS_RUN.search(text)
    if m is not None and text.startswith(". ", m.end(2)) and " " not in m.group(2):
        label_end = m.end(2) + 2
        nxt = _CAPS_RUN.match(text, label_end)  # "ALEPH. BIENAVENTURADOS": keep the stanza label
        if nxt is not None and text[label_end - 2 : label_end] == ". ":
            m = nxt
    if m is None:
        return text
    words = m.group(2).split()
    fixed = []
    for i, word in enumerate(words):
        low = word.lower()
        if i == 0:  # the run always opens its sentence
            fixed.append(word[0] + low[1:])
        else:
            fixed.append(casing.get(low, low))
    return text[: m.start(2)] + " ".join(fixed) + text[m.end(2) :]


_SUBSCRIPTION = re.compile(r"(?<=\bAmén\.) [^.]*\b(?:[Ee]scrita|[Ee]nviada)\b.*$")


def strip_subscription(text: str) -> str:
    """RV1909 ends Paul's letters and Hebrews with the KJV-era colophon after the closing "Amén."
    ("Amén. Escrita de Roma á los Efesios por Tichîco."); the WEB has none. Apply to a book's last verse.
    """
    return _SUBSCRIPTION.sub("", text)


def clean_verse(raw: str) -> str:
    """Markup removed, spacing repaired, normalised: the cleaning both languages share."""
    return normalize_text(strip_osis(raw))
