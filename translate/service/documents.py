"""Translating whole files for POST /translate_file, each format with a maintained library, structure kept:

  .txt           UTF-8 text, its lines kept (translate/data/lines.py's line contract)
  .html .htm     as format "html" (translate/service/html.py): markup, kept elements, whitespace
  .srt           srt: every subtitle keeps its index and timings; its lines are translated as one text (a
                 sentence is often broken over two lines) and written back as one line
  .docx          python-docx: body, table, header and footer paragraphs; each paragraph is one unit and its
                 runs (their formatting) are carried to the words they translate, as inline elements in HTML
                 (runs are reordered when the translation reorders them); a hyperlink is one run (its text
                 in its first run, its address kept); paragraph styles untouched
  .odt           odfpy: text:p and text:h paragraphs the same way, text:span as runs; tabs, line breaks,
                 frames and notes kept in place

A paragraph becomes <p><span data-k="0">run text</span>...</p>, goes through the HTML path (one call for all
paragraphs of a file) and comes back as its runs' new texts in their new order. A file that cannot be read
is a DocumentError (the server's 400, naming the format and the reason); so is a .docx or .odt whose parts
unpack to more than MAX_UNZIPPED_BYTES (a zip bomb: a 2 MB upload could otherwise unpack to gigabytes),
checked from the zip's directory before anything is unpacked (zipfile never unpacks more than a part
declares).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Awaitable, Callable
from html import escape

FORMATS = (".txt", ".html", ".htm", ".srt", ".docx", ".odt")
# a .docx/.odt whose parts unpack to more is refused; a document's XML packs about 5-10x, so a 2 MB upload of
# text unpacks to some 10-20 MB
MAX_UNZIPPED_BYTES = 32_000_000

# texts -> translations, for plain text (one str a text) and for HTML fragments
Translate = Callable[[list[str]], Awaitable[list[str]]]


class DocumentError(ValueError):
    pass


async def translate_document(ext: str, data: bytes, text: Translate, html: Translate) -> bytes:
    if ext == ".txt":
        return (await text([_utf8(data, ext)]))[0].encode("utf-8")
    if ext in (".html", ".htm"):
        return (await html([_utf8(data, ext)]))[0].encode("utf-8")
    if ext == ".srt":
        return await _srt(data, text)
    if ext == ".docx":
        _check_unzipped(data, ext)
        return await _docx(data, html)
    if ext == ".odt":
        _check_unzipped(data, ext)
        return await _odt(data, html)
    raise DocumentError(unsupported(ext))


def unsupported(ext: str) -> str:
    return f"file format not supported: {ext or 'no extension'} (supported: {', '.join(FORMATS)})"


def _check_unzipped(data: bytes, ext: str) -> None:
    """Refuse (DocumentError) a zip that is not one, or whose parts declare more than MAX_UNZIPPED_BYTES."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            size = sum(info.file_size for info in z.infolist())
    except (zipfile.BadZipFile, ValueError) as e:
        raise DocumentError(f"corrupt {ext} file: {e}") from None
    if size > MAX_UNZIPPED_BYTES:
        raise DocumentError(f"the {ext} file unpacks to {size} bytes, more than this server reads "
                            f"({MAX_UNZIPPED_BYTES})")  # fmt: skip


def _utf8(data: bytes, ext: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DocumentError(f"the {ext} file is not UTF-8 text (byte {e.start})") from None


async def _srt(data: bytes, text: Translate) -> bytes:
    import srt

    try:
        subs = list(srt.parse(_utf8(data, ".srt")))
    except (srt.SRTParseError, ValueError) as e:
        raise DocumentError(f"corrupt .srt file: {e}") from None
    found = await text([" ".join(s.content.split("\n")) for s in subs])
    for s, t in zip(subs, found):
        s.content = t
    return srt.compose(subs, reindex=False).encode("utf-8")


# ------------------------------------------------------------------------ paragraphs of runs via HTML


def _as_html(runs: list[str]) -> str:
    spans = (f'<span data-k="{k}">{escape(t, quote=False)}</span>' for k, t in enumerate(runs))
    return "<p>" + "".join(spans) + "</p>"


def _from_html(html: str, n: int) -> list[tuple[int, str]]:
    """-> (run index, its new text) in the translation's order; a run left out gets ""."""
    from bs4 import Tag

    from translate.service.html import parse

    p = parse(html).find("p")
    order: list[list] = []
    loose = ""  # words outside every span: they join the run before them (or the first one)
    for child in p.children if p is not None else []:
        k = int(child["data-k"]) if isinstance(child, Tag) and child.get("data-k", "").isdigit() else None
        if k is not None and 0 <= k < n and all(k != o[0] for o in order):
            order.append([k, (loose + " " if loose else "") + child.get_text()])
            loose = ""
        elif not isinstance(child, Tag) and str(child).strip():
            if order:
                order[-1][1] += " " + str(child).strip()
            else:
                loose = (loose + " " + str(child).strip()).strip()
    seen = {o[0] for o in order}
    return [(k, t) for k, t in order] + [(k, "") for k in range(n) if k not in seen]


def _spaced(order: list[tuple[int, str]], originals: list[str]) -> list[tuple[int, str]]:
    """Words of two runs need a space between them: the HTML path puts it outside the spans."""
    out = []
    for i, (k, t) in enumerate(order):
        if t and i + 1 < len(order) and order[i + 1][1] and not t.endswith(" "):
            t += " "
        out.append((k, t if originals[k].strip() or not originals[k] else originals[k]))
    return out


async def _paragraphs(paragraphs: list[list[str]], html: Translate) -> list[list[tuple[int, str]]]:
    """Per paragraph its runs' texts -> per paragraph (run index, new text) in the new order."""
    todo = [i for i, runs in enumerate(paragraphs) if any(t.strip() for t in runs)]
    found = await html([_as_html(paragraphs[i]) for i in todo])
    out = [[(k, t) for k, t in enumerate(runs)] for runs in paragraphs]
    for i, h in zip(todo, found):
        out[i] = _spaced(_from_html(h, len(paragraphs[i])), paragraphs[i])
    return out


async def _docx(data: bytes, html: Translate) -> bytes:
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.text.run import Run

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as e:
        raise DocumentError(f"corrupt .docx file: {e}") from None
    paragraphs = list(_docx_paragraphs(document))
    inner = [list(p.iter_inner_content()) for p in paragraphs]  # runs and hyperlinks, in order
    runs = [[r.text for r in items] for items in inner]
    for items, runs_of, order in zip(inner, runs, await _paragraphs(runs, html)):
        slots = [r._r if isinstance(r, Run) else r._hyperlink for r in items]  # their XML elements
        for k, t in order:
            if t != runs_of[k]:  # (setting a run's text replaces all it holds: drawings too)
                _set_text(items[k], t)
        _reorder(slots, [slots[k] for k, _ in order])
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _set_text(item, text: str) -> None:
    """A run's text; a hyperlink's: in its first run, its other runs emptied."""
    from docx.text.run import Run

    if isinstance(item, Run):
        item.text = text
        return
    runs = item.runs
    if runs:
        runs[0].text = text
        for r in runs[1:]:
            r.text = ""


def _docx_paragraphs(document):
    def cells(tables):
        for table in tables:
            for row in table.rows:
                for cell in row.cells:
                    yield from cell.paragraphs
                    yield from cells(cell.tables)

    yield from document.paragraphs
    yield from cells(document.tables)
    for section in document.sections:
        for part in (section.header, section.footer):
            if not part.is_linked_to_previous:
                yield from part.paragraphs


def _reorder(slots: list, order: list) -> None:
    """XML elements `slots` (siblings, in document order) -> the same places holding `order`."""
    if [id(x) for x in slots] == [id(x) for x in order]:
        return
    from lxml import etree

    marks = []
    for el in slots:
        mark = etree.Element("mark")
        el.addprevious(mark)
        marks.append(mark)
    for mark, el in zip(marks, order):
        mark.addprevious(el)
        mark.getparent().remove(mark)


async def _odt(data: bytes, html: Translate) -> bytes:
    from odf import teletype, text
    from odf.element import Text
    from odf.opendocument import load

    try:
        document = load(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError, Exception) as e:  # odfpy raises what its parser raises
        raise DocumentError(f"corrupt .odt file: {type(e).__name__}: {e}") from None
    paragraphs = [p for kind in (text.P, text.H) for p in document.getElementsByType(kind)]
    # a run: a Text node or a text:span/text:a child; anything else (tab, line break, frame, note) is kept
    slots = [[c for c in p.childNodes if isinstance(c, Text) or c.qname[1] in ("span", "a", "s")]
             for p in paragraphs]  # fmt: skip
    runs = [[c.data if isinstance(c, Text) else (" " if c.qname[1] == "s" else teletype.extractText(c))
             for c in cs] for cs in slots]  # fmt: skip
    for p, cs, texts, order in zip(paragraphs, slots, runs, await _paragraphs(runs, html)):
        if [(k, t) for k, t in order] == list(enumerate(texts)):
            continue  # nothing to translate in it
        new = []
        for k, t in order:
            c = cs[k]
            if t == texts[k] or (not isinstance(c, Text) and c.qname[1] == "s"):
                new.append(c)
            elif isinstance(c, Text):
                new.append(Text(t))
            else:
                for child in list(c.childNodes):
                    _remove(c, child)
                c.addText(t)
                new.append(c)
        kids = list(p.childNodes)
        places = [i for i, c in enumerate(kids) if any(c is x for x in cs)]
        for i, c in zip(places, new):
            kids[i] = c
        for c in list(p.childNodes):
            _remove(p, c)
        for c in kids:
            p.appendChild(c)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _remove(parent, child) -> None:
    from odf.element import Text

    if isinstance(child, Text):  # odfpy's removeChild takes elements only
        parent.childNodes.remove(child)
        child.parentNode = None
    else:
        parent.removeChild(child)
