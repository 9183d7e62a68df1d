"""The line contract: split at "\n" only, a trailing "\r" dropped, invalid UTF-8 replaced and numbered."""

from hypothesis import given, settings
from hypothesis import strategies as st

from translate.data.lines import (
    clean_text,
    decode_line,
    invalid_utf8_message,
    one_line,
    split_lines,
    text_lines,
)


def test_only_newline_separates_lines():
    data = "a\rb\x0bc\x0cd\x1ce\x1df\x1eg\x85h\u2028i\u2029j\n".encode()
    assert split_lines(data) == (["a\rb\x0bc\x0cd\x1ce\x1df\x1eg\x85h\u2028i\u2029j"], [])
    assert len(data.decode().splitlines()) == 10  # what str.splitlines would have made of it


def test_ends_of_input_and_carriage_returns():
    assert split_lines(b"") == ([], [])
    assert split_lines(b"\n") == ([""], [])
    assert split_lines(b"a") == (["a"], [])
    assert split_lines(b"a\nb") == split_lines(b"a\nb\n") == (["a", "b"], [])
    assert split_lines(b"a\r\n\r\nb\r") == (["a", "", "b"], [])
    assert split_lines(b"a\r\r\n\rb\n") == (["a\r", "\rb"], [])  # only one trailing \r goes
    assert split_lines(b"\n\n") == (["", ""], [])


def test_text_lines_keep_the_layout_of_a_str():
    assert text_lines("a\r\nb\n\nc\u2028d\r") == ["a", "b", "", "c\u2028d"]
    assert text_lines("") == [""] and text_lines("a\n") == ["a", ""]  # "\n".join gives the text back
    assert "\n".join(text_lines("x\n\ny\n")) == "x\n\ny\n"


def test_invalid_utf8_is_replaced_and_numbered():
    lines, bad = split_lines(b"ok\n\xff\nfine \xc3\xa1\n\xed\xa0\x80 surrogate\n\xc3(\n")
    assert lines == ["ok", "\ufffd", "fine \u00e1", "\ufffd\ufffd\ufffd surrogate", "\ufffd("]
    assert bad == [2, 4, 5]
    assert decode_line(b"\xff\r\n") == ("\ufffd", False) and decode_line(b"x\n") == ("x", True)


def test_clean_text_and_messages():
    assert clean_text("ok \u00e1") == ("ok \u00e1", True)
    assert clean_text("bad \udcff") == ("bad \ufffd", False)  # surrogateescape of byte 0xff
    assert clean_text("lone \ud800")[1] is False and clean_text("lone \ud800")[0].encode("utf-8")
    assert invalid_utf8_message([3]).startswith("line 3: not valid UTF-8")
    many = invalid_utf8_message(list(range(1, 30)))
    assert many.startswith("lines 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, ... (29 lines): ")
    assert one_line("a\nb\rc\td") == "a b c d"


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary())
def test_any_bytes_give_one_valid_line_per_newline(data):
    lines, bad = split_lines(data)
    assert len(lines) == data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    raws = data.split(b"\n")[: len(lines)]
    for line, raw in zip(lines, raws):
        assert line == raw.removesuffix(b"\r").decode("utf-8", errors="replace")
        line.encode("utf-8")  # valid text: raises on a lone surrogate
    assert bad == [n for n, raw in enumerate(raws, 1) if not _valid(raw)]


def _valid(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False
