"""format "html": markup kept (elements, attributes, nesting), kept elements untouched, block elements
translated as units, inline elements carried by the alignment; Mastodon-shaped statuses through the server
the way Mastodon's TranslationService::LibreTranslate sends them, and a whole page."""

from __future__ import annotations

import re
from collections import Counter

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve]'")
pytest.importorskip("bs4", reason="the serve extra is not installed: pip install -e '.[serve]'")

from tests.service.live import TINY_SEARCH, call  # noqa: E402
from translate.service.html import FORMATTER, carry, parse, replace, units_of, write  # noqa: E402

MENTION = ('<span class="h-card"><a href="https://social.example/@ana" class="u-url mention">'
           "@<span>ana</span></a></span>")  # fmt: skip
HASHTAG = ('<a href="https://social.example/tags/biblia" class="mention hashtag" rel="tag">'
           "#<span>biblia</span></a>")  # fmt: skip
LINK = ('<a href="https://example.org/genesis/1" target="_blank" rel="nofollow noopener noreferrer">'
        '<span class="invisible">https://</span><span class="">example.org/genesis/1</span>'
        '<span class="invisible"></span></a>')  # fmt: skip
STATUSES = [
    f"<p>{MENTION} Dios es <strong>amor</strong> y la luz es buena. 🙂</p><p>Lee {LINK} {HASHTAG}</p>",
    "<p>En el principio creó Dios<br>los cielos y la tierra.</p><p>Y dijo Dios: <em>Sea la luz</em>.</p>",
    "<p>El agua &amp; la tierra &lt;son&gt; buenas.</p>",
]
PAGE = """<!DOCTYPE html>
<html lang="es">
<head>
  <meta charset="utf-8">
  <title>La luz</title>
  <style>p { color: #333; } /* Dios es amor */</style>
  <script>var texto = "Dios es amor";</script>
</head>
<body>
  <!-- un comentario -->
  <h1 id="top">El principio</h1>
  <p class="intro">Dios es <b>amor</b>, y <a href="/luz" title="luz">la luz</a> es buena.</p>
  <pre>  Dios   es
  amor  </pre>
  <p>Escribe <code>dios --es amor</code> en la terminal.</p>
  <div translate="no">Dios es amor.</div>
  <ul>
    <li>El agua</li>
    <li>La tierra</li>
  </ul>
  <table><tr><td>Dios</td><td>es amor</td></tr></table>
</body>
</html>
"""


def shape(html: str) -> Counter:
    """Every element with its attributes and the chain of its ancestors (sibling order not counted)."""
    soup = parse(html)
    out = Counter()
    for el in soup.find_all(True):
        chain = tuple((p.name, tuple(sorted((k, str(v)) for k, v in p.attrs.items())))
                      for p in [el, *el.parents] if p.name != "[document]")  # fmt: skip
        out[chain] += 1
    return out


def offline(live, text: str) -> str:
    return live.translator.translate([text], TINY_SEARCH)[0][0]


def words(text: str) -> str:
    return " ".join(text.split())


def test_inline_elements_follow_the_alignment():
    """La casa <b>roja</b> -> The <b>red</b> house, with a reordering alignment; opaque pieces stay put."""
    soup = parse(f"<p>{MENTION} La casa <b>roja</b> es <i>muy <em>grande</em></i>. 🙂</p>")
    (unit,) = units_of(soup)
    assert unit.text == "La casa roja es muy grande."
    replace(unit, carry(unit, ["The", "red", "house", "is", "very", "big."], [0, 2, 1, 3, 4, 5]))
    assert write(soup) == (
        f"<p>{MENTION} The <b>red</b> house is <i>very <em>big.</em></i> 🙂</p>"
    )


def test_an_element_no_target_word_chose_takes_the_one_attending_most_and_siblings_do_not_overlap():
    soup = parse("<p><a href='#a'>uno</a> <b>dos</b> tres</p>")
    (unit,) = units_of(soup)
    weights = [[0.1, 0.2, 0.7], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]]  # nothing takes "uno" as its best
    replace(unit, carry(unit, ["three", "two", "one"], [2, 1, 1], weights))
    out = write(soup)
    assert out == '<p>three <b>two</b> <a href="#a">one</a></p>' and shape(out) == shape(str(unit.parent))


def test_without_alignment_the_diagonal_keeps_every_element():
    soup = parse("<p>Uno <b>dos</b> tres <i>cuatro</i></p>")
    (unit,) = units_of(soup)
    from translate.service.html import diagonal

    target = ["one", "two", "three", "four", "five"]
    replace(unit, carry(unit, target, [diagonal(t, 5, unit.size) for t in range(5)]))
    assert write(soup) == "<p>one <b>two</b> three four <i>five</i></p>"  # t -> round(t * 4 / 5)


def test_any_fragment_and_any_alignment_keep_the_markup():
    """300 random fragments (nested inline and block elements, <br>, kept and opaque elements, emoji,
    entities), each unit given a random translation and alignment: the elements, attributes and nesting
    always come back, and the kept text is untouched."""
    import random

    r = random.Random(20)
    tags, vocabulary = ["b", "i", "a", "span", "em", "code", "br", "p", "div", "li"], [
        "Dios", "es", "amor", ".", ",", "🙂", "@ana", "https://x.org/a", "&amp;", "&lt;b&gt;"]  # fmt: skip

    def fragment(depth=0):
        out = []
        for _ in range(r.randint(1, 4)):
            if r.random() < 0.5 or depth > 3:
                text = " ".join(r.choice(vocabulary) for _ in range(r.randint(0, 4)))
                out.append(text + r.choice(["", " ", "\n"]))
            elif (t := r.choice(tags)) == "br":
                out.append("<br>")
            else:
                attrs = r.choice(["", ' class="mention"', ' href="#x"', ' translate="no"', ' id="k"'])
                out.append(f"<{t}{attrs}>{fragment(depth + 1)}</{t}>")
        return "".join(out)

    for _ in range(300):
        html = fragment()
        soup = parse(html)
        kept = soup.find_all("code") + soup.find_all(translate="no")
        kept = [el.decode(formatter=FORMATTER) for el in kept]
        for unit in units_of(soup):
            T, S = r.randint(0, 8), unit.size
            weights = [[r.random() for _ in range(S)] for _ in range(T)] if r.random() < 0.5 else None
            chosen = [r.randrange(S) for _ in range(T)]
            replace(unit, carry(unit, [f"w{t}" for t in range(T)], chosen, weights))
        out = write(soup)
        assert shape(out) == shape(html), html
        assert all(k in out for k in kept), html


def test_the_alignment_is_the_models_cross_attention(live):
    """With a Transformer the words are placed by its attention (not the diagonal): each target word takes
    the source word it attends to most, in the word-level map the web page draws."""
    from translate.service.alignment import alignment_json, word_weights
    from translate.service.html import alignment_for

    tr = live.translator
    text = "Y dijo Dios: Sea la luz."
    plan = tr.plan([text])
    hyps = tr.engine.translate_ids(plan.units, TINY_SEARCH)
    target, source_of, rows = alignment_for(tr, plan, hyps, len(text.split()))
    a = alignment_json(tr, plan.units[0], hyps[0][0].tokens)
    assert rows is not None and target == tr.detokenize(hyps[0][0]).split()
    best = [max(range(len(row) - 1), key=row.__getitem__) for row in word_weights(a)[:-1]]  # no EOS
    assert source_of == best


def test_mastodon_statuses_keep_their_markup(live):
    """The request as Mastodon's TranslationService::LibreTranslate builds it: q a list of status HTML,
    source the status language or "auto", format html, api_key null; it reads translatedText[i] and
    detectedLanguage[i].language."""
    for source in ("es", "auto"):
        body = {"q": STATUSES, "source": source, "target": "en", "format": "html", "api_key": None}
        status, _, out = call(live.url, "/translate", body)
        assert status == 200 and len(out["translatedText"]) == len(STATUSES)
        if source == "auto":
            assert [d["language"] for d in out["detectedLanguage"]] == ["es"] * len(STATUSES)
        for html, got in zip(STATUSES, out["translatedText"]):
            assert shape(got) == shape(html)
        first = out["translatedText"][0]
        assert MENTION in first and HASHTAG in first and LINK in first and "🙂" in first  # kept verbatim
        soup = parse(first)
        p = soup.find("p")  # one unit: the whole sentence, with <strong> inside, went to the model at once
        unit_text = words(" ".join(s for s in p.find_all(string=True) if not s.find_parent(class_="h-card")))
        assert unit_text.replace("🙂", "").strip() == words(offline(live, "Dios es amor y la luz es buena."))
        second = parse(out["translatedText"][1]).find("p")
        before, after = re.split("<br/?>", str(second))  # a <br> cuts the unit: each side translated alone
        assert words(parse(before).get_text()) == words(
            offline(live, "En el principio creó Dios"))
        assert words(parse(after).get_text()) == words(
            offline(live, "los cielos y la tierra."))
        third = out["translatedText"][2]
        assert "<" not in third.replace("<p>", "").replace("</p>", "")  # entities stay escaped


def test_a_whole_page_keeps_its_structure_and_what_must_not_be_translated(live):
    body = {"q": PAGE, "source": "es", "target": "en", "format": "html"}
    status, _, out = call(live.url, "/translate", body)
    assert status == 200
    got = out["translatedText"]
    assert got.startswith("<!DOCTYPE html>\n<html lang=\"es\">\n<head>\n  <meta charset=\"utf-8\">")
    assert shape(got) == shape(PAGE)
    for kept in ('<style>p { color: #333; } /* Dios es amor */</style>',
                 '<script>var texto = "Dios es amor";</script>', "<pre>  Dios   es\n  amor  </pre>",
                 "<code>dios --es amor</code>", '<div translate="no">Dios es amor.</div>',
                 "<!-- un comentario -->"):  # fmt: skip
        assert kept in got
    assert "</li>\n    <li>" in got and "</ul>\n  <table>" in got  # whitespace between blocks kept
    soup = parse(got)
    assert words(soup.find("title").get_text()) == words(offline(live, "La luz"))
    assert words(soup.find("p", class_="intro").get_text()) == words(
        offline(live, "Dios es amor, y la luz es buena."))  # one unit across <b> and <a>
    code = soup.find("code").parent  # inline <code> is kept inside its sentence, which stays one unit
    want = words(offline(live, "Escribe en la terminal."))
    assert words(code.get_text().replace("dios --es amor", "")) == want
    assert [words(li.get_text()) for li in soup.find_all("li")] == [
        words(offline(live, "El agua")), words(offline(live, "La tierra"))]


def test_markup_nested_too_deep_is_a_400_naming_the_depth(live):
    """1,600 nested elements (4,800 characters of text, 8,000 of a file) would exhaust Python's recursion in
    the walk over units: a 400 naming the depth, for a request and for a file alike, then the next answer."""
    from tests.service.test_documents import upload
    from tests.service.test_libretranslate import server
    from translate.service.html import MAX_DEPTH

    deep = "<b>" * 1600 + "Dios es amor."
    with server(live, char_limit=6000) as url:
        body = {"q": deep, "source": "es", "target": "en", "format": "html"}
        status, _, out = call(url, "/translate", body)
        assert status == 400, out
        assert f"nested 1600 deep, more than this server reads ({MAX_DEPTH})" in out["error"]
        assert call(url, "/translate", {**body, "q": "<b>" * MAX_DEPTH + "Dios es amor."})[0] == 200
    status, out = upload(live.url, "hondo.html", ("<div>" * 1600 + "Dios es amor.").encode())
    assert status == 400 and "nested 1600 deep" in out["error"]
    assert call(live.url, "/translate", {"q": "<p>Dios es amor.</p>", "source": "es", "target": "en",
                                         "format": "html"})[0] == 200  # fmt: skip
