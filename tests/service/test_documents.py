"""POST /translate_file and GET /download_file/<name> on 127.0.0.1: .txt, .html, .srt, .docx and .odt
translated with their structure kept (paragraph styles, runs, subtitle timings), refusals as 400s with a
reason, downloads that expire and cannot be guessed or used to read other files."""

from __future__ import annotations

import io
import json
import time
import urllib.request
import uuid

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve]'")

from tests.service.live import TINY_SEARCH, call  # noqa: E402
from tests.service.test_libretranslate import raw, server  # noqa: E402

SRT = """1
00:00:01,000 --> 00:00:03,500
En el principio creó Dios
los cielos y la tierra.

2
00:00:04,000 --> 00:00:06,250
Y dijo Dios: Sea la luz.
"""


def offline(live, text: str) -> str:
    return "\n".join(line[0] for line in live.translator.translate(text.split("\n"), TINY_SEARCH))


def words(text: str) -> str:
    return " ".join(text.split())


def upload(url: str, name: str, data: bytes, fields: dict | None = None):
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in {"source": "es", "target": "en", **(fields or {})}.items()]  # fmt: skip
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n\r\n'
    parts.append(head.encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    kind = f"multipart/form-data; boundary={boundary}"
    status, _, out = raw(url, "/translate_file", body, {"Content-Type": kind})
    return status, json.loads(out)


def download(url: str) -> tuple[bytes, dict]:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read(), dict(r.headers)


def translated(live, name: str, data: bytes) -> tuple[bytes, dict]:
    status, out = upload(live.url, name, data)
    assert status == 200, out
    assert out["translatedFileUrl"].startswith(live.url + "/download_file/")
    return download(out["translatedFileUrl"])


def test_txt_and_html(live):
    text = "Dios es amor.\n\nLa luz es buena.\n"
    got, headers = translated(live, "carta.txt", text.encode())
    assert got.decode() == offline(live, text) and 'filename="carta.txt"' in headers["content-disposition"]
    status, out = upload(live.url, "carta.txt", text.encode(), {"source": "auto"})  # detected: es
    assert status == 200 and download(out["translatedFileUrl"])[0].decode() == offline(live, text)
    html = "<html><body>\n<p>Dios es <b>amor</b>.</p>\n<pre>no</pre>\n</body></html>"
    got, _ = translated(live, "página.html", html.encode())
    from translate.service.html import parse

    soup = parse(got.decode())
    assert soup.find("b") is not None and soup.find("pre").get_text() == "no" and "\n<pre>" in got.decode()
    assert words(soup.find("p").get_text()) == words(offline(live, "Dios es amor."))


def test_srt_keeps_indexes_and_timings(live):
    import srt

    got, _ = translated(live, "film.srt", SRT.encode())
    before, after = list(srt.parse(SRT)), list(srt.parse(got.decode()))
    assert [(s.index, s.start, s.end) for s in after] == [(s.index, s.start, s.end) for s in before]
    assert [s.content for s in after] == [offline(live, " ".join(s.content.split("\n"))) for s in before]


def test_docx_keeps_styles_runs_and_tables(live):
    docx = pytest.importorskip("docx")
    d = docx.Document()
    d.add_paragraph("El principio", style="Heading 1")
    p = d.add_paragraph("Dios es ", style="List Bullet")
    bold = p.add_run("amor")
    bold.bold = True
    p.add_run(" y la luz es buena.")
    d.add_table(rows=1, cols=2).rows[0].cells[1].text = "El agua"
    from docx.opc.constants import RELATIONSHIP_TYPE
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    linked = d.add_paragraph("Mira ")
    link, run, t = OxmlElement("w:hyperlink"), OxmlElement("w:r"), OxmlElement("w:t")
    address = d.part.relate_to("https://example.org/luz", RELATIONSHIP_TYPE.HYPERLINK, is_external=True)
    link.set(qn("r:id"), address)
    t.text = "la luz"
    run.append(t)
    link.append(run)
    linked._p.append(link)
    buf = io.BytesIO()
    d.save(buf)
    got, headers = translated(live, "libro.docx", buf.getvalue())
    assert headers["content-type"].startswith("application/vnd.openxmlformats")
    out = docx.Document(io.BytesIO(got))
    assert [q.style.name for q in out.paragraphs] == [q.style.name for q in d.paragraphs]
    assert words(out.paragraphs[0].text) == words(offline(live, "El principio"))
    assert words(out.paragraphs[1].text) == words(offline(live, "Dios es amor y la luz es buena."))
    assert len(out.paragraphs[1].runs) == 3 and sum(bool(r.bold) for r in out.paragraphs[1].runs) == 1
    assert words(out.tables[0].rows[0].cells[1].text) == words(offline(live, "El agua"))
    assert words(out.paragraphs[2].text) == words(offline(live, "Mira la luz"))
    (link_out,) = out.paragraphs[2].hyperlinks
    assert link_out.url == "https://example.org/luz"


def test_odt_keeps_paragraph_and_span_styles(live):
    pytest.importorskip("odf")
    from odf import teletype, text
    from odf.opendocument import OpenDocumentText, load
    from odf.style import Style, TextProperties

    doc = OpenDocumentText()
    strong = Style(name="Strong", family="text")
    strong.addElement(TextProperties(fontweight="bold"))
    doc.styles.addElement(strong)
    h = text.H(outlinelevel=1, stylename="Heading_20_1")
    h.addText("El principio")
    doc.text.addElement(h)
    p = text.P(stylename="Standard")
    p.addText("Dios es ")
    span = text.Span(stylename=strong)
    span.addText("amor")
    p.addElement(span)
    p.addText(" y la luz.")
    doc.text.addElement(p)
    buf = io.BytesIO()
    doc.save(buf)
    got, _ = translated(live, "libro.odt", buf.getvalue())
    out = load(io.BytesIO(got))
    (h2,), (p2,) = out.getElementsByType(text.H), out.getElementsByType(text.P)
    assert h2.getAttribute("stylename") == "Heading_20_1" and p2.getAttribute("stylename") == "Standard"
    assert words(teletype.extractText(h2)) == words(offline(live, "El principio"))
    assert words(teletype.extractText(p2)) == words(offline(live, "Dios es amor y la luz."))
    (span2,) = p2.getElementsByType(text.Span)
    assert span2.getAttribute("stylename") == "Strong"


@pytest.mark.parametrize(
    "name,data,words_",
    [("virus.exe", b"MZ", "file format not supported: .exe"), ("vacio.txt", b"", "empty file"),
     ("roto.docx", b"PK\x03\x04 not a zip", "corrupt .docx file"), ("roto.odt", b"nonsense", "corrupt .odt"),
     ("latin1.txt", "años".encode("latin-1"), "not UTF-8"),
     ("mal.srt", b"1\nnot a timing\nx\n", "corrupt .srt")],
)  # fmt: skip
def test_refusals_are_400s_with_a_reason(live, name, data, words_):
    status, out = upload(live.url, name, data)
    assert status == 400 and words_ in out["error"]


def bloated(document: bytes, part: str, padding: int) -> bytes:
    """The zip `document` with `padding` spaces after the root element of its XML `part` (still valid XML):
    ~40 KB packed per 40 MB unpacked, written in 1 MB pieces."""
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(document)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename != part:
                dst.writestr(info, src.read(info.filename))
                continue
            with dst.open(part, "w") as f:
                f.write(src.read(part))
                for _ in range(padding // 1_000_000):
                    f.write(b" " * 1_000_000)
    return out.getvalue()


def test_a_zip_bomb_is_refused_before_it_is_unpacked(live):
    """A .docx and an .odt whose document XML unpacks to 40 MB (trailing whitespace: valid XML) from under
    200 KB: a 400 naming the unpacked size (read from the zip's directory); the server answers the next."""
    docx = pytest.importorskip("docx")
    pytest.importorskip("odf")
    from odf import text
    from odf.opendocument import OpenDocumentText

    from translate.service.documents import MAX_UNZIPPED_BYTES

    d = docx.Document()
    d.add_paragraph("Dios es amor.")
    plain_docx = io.BytesIO()
    d.save(plain_docx)
    o = OpenDocumentText()
    p = text.P()
    p.addText("Dios es amor.")
    o.text.addElement(p)
    plain_odt = io.BytesIO()
    o.save(plain_odt)
    for name, document, part in (("bomba.docx", plain_docx, "word/document.xml"),
                                 ("bomba.odt", plain_odt, "content.xml")):  # fmt: skip
        bomb = bloated(document.getvalue(), part, 40_000_000)
        assert len(bomb) < 200_000 and MAX_UNZIPPED_BYTES < 40_000_000
        status, out = upload(live.url, name, bomb)
        assert status == 400 and "unpacks to" in out["error"], out
        assert f"more than this server reads ({MAX_UNZIPPED_BYTES})" in out["error"]
    status, _ = upload(live.url, "bien.txt", b"Dios es amor.")
    assert status == 200


def test_too_big_and_missing_file(live):
    with server(live, max_file_bytes=100) as url:
        status, out = upload(url, "grande.txt", b"Dios es amor. " * 20)
        assert status == 400 and "file too big" in out["error"]
    status, _, out = call(live.url, "/translate_file", {"source": "es", "target": "en"})
    assert status == 400 and "missing field file" in out["error"]


def test_downloads_cannot_be_guessed_or_used_to_read_other_files(live, tmp_path):
    status, out = upload(live.url, "../../etc/passwd.txt", b"Dios es amor.")
    assert status == 200
    name = out["translatedFileUrl"].rsplit("/", 1)[1]
    assert name.endswith(".passwd.txt") and len(name.split(".")[0]) == 32  # 192 random bits, the path gone
    for bad in ("x" * 32 + ".passwd.txt", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", name + "x"):
        status, _, body = call(live.url, "/download_file/" + bad)
        assert status == 404 and "error" in body


def test_downloads_expire(tmp_path):
    from translate.service.downloads import Downloads

    d = Downloads(ttl=60)
    try:
        name = d.put("a.txt", b"hola")
        path, filename = d.get(name)
        assert path.read_bytes() == b"hola" and filename == "a.txt"
        d.expire(now=time.monotonic() + 61)  # after its 60 s: gone, and deleted from the disk
        assert d.get(name) is None and not path.exists()
    finally:
        d.close()
