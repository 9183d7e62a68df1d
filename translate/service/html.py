"""format "html": translate the text of an HTML document or fragment and keep its markup.

Parsed by BeautifulSoup with Python's html.parser (no <html>/<body> added to a fragment; attributes, their
order and all whitespace kept as written), then:

  units     Block elements (p, li, h1-h6, td, div, ...) hold units: each run of text and inline elements
            between two blocks (or <br>s) is translated as one text, so a sentence with a link or bold words
            in it is translated as a sentence (LibreTranslate's translatehtml translates each text node).
  kept      Text in <script>, <style>, <code>, <pre> (and kbd, samp, var, textarea, svg, math, template) and
            in elements with translate="no" is left as it is; so are comments, the doctype, whitespace-only
            text between blocks. <script>, <style>, <pre>, <textarea> and <template> end a unit; the inline
            ones (<code>, translate="no" spans, ...) are "opaque" pieces inside their unit, as are Mastodon's
            @mention and #hashtag links (class mention, hashtag, h-card), links whose text is their URL, and
            emoji: each keeps its place relative to the words around it.
  inline    Inline elements inside a unit (a, b, i, em, strong, span, ...) are carried to the target words
            that the model aligned with the source words they covered: the cross-attention (heads and layers
            averaged, translate.evaluation.alignment), each target word taking its most attended source word;
            each element gets the span from its first to its last such target word (an element none of whose
            words was chosen takes the one target word that attends to them most), nested inside its parent's
            span; of two siblings that overlap, the earlier ends where the later starts. So the answer has
            exactly the input's elements, attributes and nesting (siblings' order may follow the translation).
  fallback  Without an alignment (a CTranslate2 export, RNNencdec, or a unit whose words the tokenizer
            grouped differently from the text's whitespace), target word t of T is aligned with source word
            round(t * S / T) of S: the diagonal, which keeps every element in place for languages with
            similar word order.

Markup nested deeper than MAX_DEPTH (200) elements is refused with a 400 naming its depth (the walk over
units recurses once per level).

Entities are decoded by the parser and written back by BeautifulSoup's minimal formatter (&amp; &lt; &gt;
escaped, other characters as UTF-8). Alternatives are not given for HTML (as LibreTranslate).
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
import warnings
from dataclasses import dataclass, field

from bs4 import BeautifulSoup, Comment, MarkupResemblesLocatorWarning, NavigableString, Tag
from bs4.builder import HTMLParserTreeBuilder
from bs4.dammit import EntitySubstitution
from bs4.element import CData, Declaration, Doctype, ProcessingInstruction
from bs4.formatter import HTMLFormatter

from translate.service.alignment import alignment_json, word_weights
from translate.service.requests import ApiError

BLOCK = {"address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog",
         "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4",
         "h5", "h6", "head", "header", "hgroup", "hr", "html", "legend", "li", "main", "menu", "nav", "ol",
         "option", "p", "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "title", "tr",
         "ul"}  # fmt: skip
KEEP = {"script", "style", "code", "pre", "kbd", "samp", "var", "textarea", "svg", "math", "template"}
KEEP_BLOCK = {"script", "style", "pre", "textarea", "template"}  # the others are inline: kept inside a unit
MAX_DEPTH = 200  # elements nested deeper are refused (a 400): the walk over units recurses once per level
OPAQUE_CLASSES = {"mention", "hashtag", "h-card"}
SPECIAL = (Comment, CData, Declaration, Doctype, ProcessingInstruction)
URL = re.compile(r"^(https?://|www\.)\S+$")


class Formatter(HTMLFormatter):
    """& < > escaped, every other character as it is, attributes in their order, void elements as <br>."""

    def __init__(self):
        super().__init__(entity_substitution=EntitySubstitution.substitute_xml,
                         void_element_close_prefix=None)  # fmt: skip

    def attributes(self, tag):
        return list(tag.attrs.items())  # (BeautifulSoup's default sorts them)


FORMATTER = Formatter()


def parse(html: str) -> BeautifulSoup:
    """html.parser, every whitespace string kept as written (BeautifulSoup's default turns whitespace-only
    strings outside <pre> into one newline or space)."""
    keep = {"pre", "textarea", "[document]"}  # "[document]": the root, so everything under it
    with warnings.catch_warnings():  # a text that looks like a URL or a file name is still a text
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        return BeautifulSoup(html, builder=HTMLParserTreeBuilder(preserve_whitespace_tags=keep))


def write(soup: BeautifulSoup) -> str:
    out = soup.decode(formatter=FORMATTER)
    for d in soup.find_all(string=lambda s: isinstance(s, Doctype)):  # BeautifulSoup adds a newline
        out = out.replace(f"<!DOCTYPE {d}>\n", f"<!DOCTYPE {d}>", 1)
    return out


def depth(root: Tag) -> int:
    """How deep elements nest under root (without recursion: any depth)."""
    deepest, stack = 0, [(root, 0)]
    while stack:
        el, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((c, d + 1) for c in el.children if isinstance(c, Tag))
    return deepest


def kept(el: Tag) -> bool:
    return el.name in KEEP or el.get("translate") == "no"


def opaque(el: Tag) -> bool:
    """An inline element kept verbatim inside a unit."""
    if kept(el) or el.name in ("img", "input", "select", "button", "iframe", "object", "video", "audio"):
        return True
    if OPAQUE_CLASSES & set(el.get("class") or ()):
        return True
    text = el.get_text().strip()
    return bool(URL.match(text)) or not any(ch.isalnum() for ch in text)


def wordless(word: str) -> bool:
    """No letter or digit but a pictograph (emoji, symbols): kept as it is."""
    return not any(ch.isalnum() for ch in word) and any(unicodedata.category(ch) in ("So", "Sk", "Co")
                                                         for ch in word)  # fmt: skip


@dataclass
class Piece:
    """A word of a unit's text, or an opaque node; path: the inline elements around it, outermost first."""

    path: tuple[Tag, ...]
    word: str | None = None  # a word (to translate)
    node: object = None  # an opaque node (kept)
    glued: bool = False  # no whitespace before it in the source
    group: int = -1  # words: the index of the whitespace word it is part of (with glued words around it)


@dataclass
class Unit:
    parent: Tag
    nodes: list  # the consecutive children of parent that the unit replaces
    pieces: list[Piece] = field(default_factory=list)
    lead: str = ""  # whitespace before and after its content, kept
    trail: str = ""

    @property
    def words(self) -> list[Piece]:
        return [p for p in self.pieces if p.word is not None]

    @property
    def size(self) -> int:
        """Whitespace words in the text."""
        return 1 + max((p.group for p in self.pieces), default=-1)

    @property
    def text(self) -> str:
        """What the model translates: the words, glued where the source had no whitespace between them."""
        groups = [""] * self.size
        for p in self.words:
            groups[p.group] += p.word
        return " ".join(groups)


def units_of(root: Tag) -> list[Unit]:
    """Every unit under root, in document order."""
    out: list[Unit] = []
    run: list = []

    def flush(parent: Tag) -> None:
        if run:
            unit = make_unit(parent, list(run))
            if unit is not None:
                out.append(unit)
            run.clear()

    def walk(el: Tag) -> None:
        for child in list(el.children):
            if isinstance(child, Tag) and (child.name in BLOCK | KEEP_BLOCK or child.name == "br"):
                flush(el)
                if child.name in BLOCK and not kept(child):
                    walk(child)
            else:
                run.append(child)
        flush(el)

    walk(root)
    return out


def make_unit(parent: Tag, nodes: list) -> Unit | None:
    unit = Unit(parent, nodes)
    space = [True]  # whether whitespace came before the next piece

    def add(node, path: tuple[Tag, ...]) -> None:
        if isinstance(node, SPECIAL):
            unit.pieces.append(Piece(path, node=node, glued=not space[0]))
            space[0] = False
        elif isinstance(node, NavigableString):
            text = str(node)
            for m in re.finditer(r"\S+|\s+", text):
                if m.group().isspace():
                    space[0] = True
                    continue
                w = m.group()
                piece = Piece(path, node=NavigableString(w)) if wordless(w) else Piece(path, word=w)
                piece.glued = not space[0]
                unit.pieces.append(piece)
                space[0] = False
        elif opaque(node):
            unit.pieces.append(Piece(path, node=node, glued=not space[0]))
            space[0] = False
        else:
            for child in list(node.children):
                add(child, (*path, node))

    for node in nodes:
        add(node, ())
    group = -1
    for k, p in enumerate(unit.pieces):
        if p.word is not None:
            prev = unit.pieces[k - 1] if k else None
            glued = prev is not None and prev.word is not None and p.glued
            group += 0 if glued else 1
            p.group = group
    if not unit.words:
        return None  # nothing to translate: left exactly as it is
    first, last = nodes[0], nodes[-1]
    if isinstance(first, NavigableString) and not isinstance(first, SPECIAL):
        unit.lead = str(first)[: len(str(first)) - len(str(first).lstrip())]
    if isinstance(last, NavigableString) and not isinstance(last, SPECIAL):
        unit.trail = str(last)[len(str(last).rstrip()) :]
    return unit


# ------------------------------------------------------------------------------------ alignment -> markup


def diagonal(t: int, T: int, S: int) -> int:
    return min(S - 1, round(t * S / T)) if T else 0


def carry(unit: Unit, target: list[str], source_of: list[int], weights=None) -> list:
    """The unit's new nodes, as (glued, node) pairs: target words (source_of[t]: the source word, a
    Piece.group, that target word t comes from; weights[t][s]: its attention, or None) wrapped in copies
    of the inline elements of the source words they come from, with the opaque pieces in place."""
    T, S = len(target), unit.size
    elements: list[Tag] = []  # every inline element of the unit, outer before inner
    for p in unit.pieces:
        elements += [el for el in p.path if all(el is not e for e in elements)]
    covered = {id(el): sorted({p.group for p in unit.words if any(el is e for e in p.path)})
               for el in elements}  # fmt: skip

    anchor: dict[int, int] = {}  # opaque piece -> the target position it goes before
    last = -1
    for p in unit.pieces:
        if p.word is not None:
            last = p.group
        elif last < 0:
            anchor[id(p)] = 0
        elif last == S - 1:
            anchor[id(p)] = T
        else:
            after = [t for t in range(T) if source_of[t] == last]
            anchor[id(p)] = max(after) + 1 if after else diagonal(last + 1, S, T)

    spans: dict[int, tuple[int, int]] = {}  # element -> (lo, hi) target words; hi = lo - 1: empty at lo
    for el in elements:
        mine = covered[id(el)]
        ts = [t for t in range(T) if source_of[t] in mine]
        if not ts and mine and T:  # none of its words was chosen: the target word attending most to them
            if weights is not None:
                ts = [max(range(T), key=lambda t: sum(weights[t][s] for s in mine))]
            else:
                ts = [diagonal(mine[0], S, T)]
        if ts:
            spans[id(el)] = (min(ts), max(ts))
        else:  # only opaque pieces in it: where the first of them goes
            first = next((anchor[id(p)] for p in unit.pieces if p.node is not None
                          and any(el is e for e in p.path)), T)  # fmt: skip
            spans[id(el)] = (first, first - 1)

    def kids(parent: Tag | None) -> list[Tag]:
        if parent is None:
            return [el for el in elements if all(el.parent is not e for e in elements)]
        return [el for el in elements if el.parent is parent]

    def fit(parent: Tag | None, lo: int, hi: int) -> None:
        """Children inside [lo, hi], siblings apart (the later start moves past the earlier end)."""
        mine = kids(parent)
        for el in mine:
            a, b = spans[id(el)]
            a, b = max(a, lo), min(b, hi)
            if a > b:
                a = b = min(max(spans[id(el)][0], lo), hi + 1)
                b = a - 1
            spans[id(el)] = (a, b)
        prev = None  # the sibling before, in target order
        for el in sorted(mine, key=lambda el: (spans[id(el)][0], -spans[id(el)][1])):
            a, b = spans[id(el)]
            if prev is not None and b >= a:
                pa, pb = spans[id(prev)]
                if a <= pb and a > pa:  # overlap: the earlier one ends where this one starts
                    spans[id(prev)] = (pa, a - 1)
                elif a <= pb:  # same start: this one starts after the earlier one
                    a = pb + 1
                    b = max(b, a - 1)
            spans[id(el)] = (a, b)
            if b >= a:
                prev = el
        for el in mine:
            fit(el, *spans[id(el)])

    fit(None, 0, T - 1)

    def render(parent: Tag | None, lo: int, hi: int) -> list:
        opaque_here = [(min(max(anchor[id(p)], lo), hi + 1), p) for p in unit.pieces
                       if p.node is not None and (p.path[-1] if p.path else None) is parent]  # fmt: skip
        items: list[tuple[int, int, bool, object]] = []  # (position, order, glued, node)
        for pos, p in opaque_here:
            items.append((pos, 0, p.glued, p.node))
        for el in kids(parent):
            a, b = spans[id(el)]
            copy = Tag(name=el.name, attrs=dict(el.attrs), can_be_empty_element=el.can_be_empty_element)
            for glued, node in render(el, a, b):
                if copy.contents and not glued:
                    copy.append(NavigableString(" "))
                copy.append(node)
            items.append((a, 1, False, copy))
        inner = {t for el in kids(parent) for t in range(spans[id(el)][0], spans[id(el)][1] + 1)}
        items += [(t, 2, False, NavigableString(target[t])) for t in range(lo, hi + 1) if t not in inner]
        items.sort(key=lambda x: (x[0], x[1]))
        return [(glued, node) for _, _, glued, node in items]

    return render(None, 0, T - 1)


def replace(unit: Unit, nodes: list) -> None:
    """Put the unit's new nodes where its old ones were, with its leading and trailing whitespace."""
    marker = NavigableString("")
    unit.nodes[0].insert_before(marker)
    for node in unit.nodes:
        node.extract()
    new: list = [NavigableString(unit.lead)] if unit.lead else []
    for k, (glued, node) in enumerate(nodes):
        if k and not glued:
            new.append(NavigableString(" "))
        new.append(node.extract() if node.parent is not None else node)
    if unit.trail:
        new.append(NavigableString(unit.trail))
    for node in new:
        marker.insert_before(node)
    marker.extract()


# ------------------------------------------------------------------------------------------ translating


def alignment_for(translator, plan, hyps, size: int) -> tuple[list[str], list[int], list | None]:
    """One unit's translation -> (target words, source word of each, attention rows or None), per sentence
    of the plan: each plan unit's cross-attention when its words match the text's, else the diagonal."""
    target: list[str] = []
    source_of: list[int] = []
    rows: list | None = []
    offset = 0
    for sents, layout in zip(plan.sentences, plan.layout):
        sentence_words = [len(s.split()) for s in sents]
        if sum(sentence_words) != size or len(layout) != len(sents):
            sentence_words = [size]  # the splitter changed the text: one span
            layout = [[u for sent in layout for u in sent]]
        for n, unit_ids in zip(sentence_words, layout):
            for k, u in enumerate(unit_ids):
                hyp = hyps[u][0]
                text = translator.detokenize(hyp).split()
                # a sentence cut into parts: its words shared out over the parts, in order
                lo = offset + round(k * n / len(unit_ids))
                hi = offset + round((k + 1) * n / len(unit_ids))
                a = alignment_json(translator, plan.units[u], hyp.tokens)
                ok = (a is not None and len(a["source_words"]) - 1 == hi - lo
                      and len(a["target_words"]) - 1 == len(text))  # fmt: skip
                words = word_weights(a) if ok else None
                for t, w in enumerate(text):
                    if ok:
                        row = words[t][:-1]  # without the EOS column
                        s = max(range(len(row)), key=row.__getitem__)
                        if rows is not None:
                            full = [0.0] * size
                            full[lo : hi] = row
                            rows.append(full)
                    else:
                        s = diagonal(t, len(text), hi - lo)
                        rows = None
                    target.append(w)
                    source_of.append(lo + s)
            offset += n
    return target, source_of, rows


async def translate_html(state, s, texts: list[str], search, request) -> list[list[str]]:
    """HTML texts -> per text [its translation] (one: no alternatives for HTML)."""
    from translate.service.dispatch import run

    soups = [parse(t) for t in texts]
    for i, soup in enumerate(soups):
        if (d := depth(soup)) > MAX_DEPTH:
            where = f"q[{i}]" if len(texts) > 1 else "q"
            raise ApiError(400, f"{where}: HTML elements nested {d} deep, more than this server reads "
                                f"({MAX_DEPTH})")  # fmt: skip
    units = [u for soup in soups for u in units_of(soup)]
    if units:
        plans, hyps, _ = await run(state, s, [u.text for u in units], search, request)
        tr = s.translator

        def place() -> None:
            for unit, plan, h in zip(units, plans, hyps):
                target, source_of, rows = alignment_for(tr, plan, h, unit.size)
                replace(unit, carry(unit, target, source_of, rows))

        await asyncio.to_thread(place)
    return [[write(soup)] for soup in soups]
