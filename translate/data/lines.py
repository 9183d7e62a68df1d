"""The line contract of text input (the `translate` CLI's files and stdin; any service that takes text lines).

- Lines are separated by b"\\n" only: \\r, \\x0b, \\x0c, \\x1c-\\x1e, \\x85, \\u2028 and \\u2029 stay inside
  their line (str.splitlines would split on all of them). One trailing b"\\r" is dropped (CRLF input).
- A last line without "\\n" counts; an empty input has no lines.
- Bytes that are not UTF-8 become U+FFFD and the line's number is reported, so the caller can warn once;
  no line is dropped, split or merged, whatever the locale (the input is read as bytes).
- An output line never contains "\\n", "\\r" or a tab (one_line), so one line in gives one line out.
"""

from __future__ import annotations


def decode_line(raw: bytes) -> tuple[str, bool]:
    """One line's bytes, with or without its b"\\n" or b"\\r\\n" -> (text, whether it was valid UTF-8)."""
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), False


def split_lines(data: bytes) -> tuple[list[str], list[int]]:
    """A whole input -> (its lines, the 1-based numbers of the lines that were not valid UTF-8)."""
    parts = data.split(b"\n")
    if parts[-1] == b"":
        parts.pop()  # the final "\n" ends the last line (and b"" holds no line at all)
    lines, bad = [], []
    for n, raw in enumerate(parts, 1):
        text, ok = decode_line(raw)
        lines.append(text)
        if not ok:
            bad.append(n)
    return lines, bad


def text_lines(text: str) -> list[str]:
    """A text given as a str (an API request's field) -> its lines by the same rule: split at "\n" only,
    one trailing "\r" per line dropped. Every "\n" separates two lines, so "\n".join(result) restores the
    layout (a final "\n" gives a last, empty line)."""
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def clean_text(text: str) -> tuple[str, bool]:
    """A str that may hold lone surrogates (arguments decoded with surrogateescape under a non-UTF-8 locale,
    JSON "\\ud800") -> (valid text with U+FFFD in their place, whether it was valid already)."""
    try:
        text.encode("utf-8")
        return text, True
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", errors="replace"), False
    except UnicodeEncodeError:  # surrogates outside the escape range
        return text.encode("utf-8", errors="replace").decode("utf-8"), False


def invalid_utf8_message(numbers: list[int], shown: int = 10) -> str:
    """One warning for all the lines that were not valid UTF-8: 'lines 2, 7: not valid UTF-8; ...'."""
    listed = ", ".join(map(str, numbers[:shown]))
    if len(numbers) > shown:
        listed += f", ... ({len(numbers)} lines)"
    noun = "line" if len(numbers) == 1 else "lines"
    return f"{noun} {listed}: not valid UTF-8; the invalid bytes were replaced with U+FFFD"


def one_line(text: str) -> str:
    """An output text that cannot break the one-line-per-line contract: newlines and tabs become spaces."""
    return text.replace("\r", " ").replace("\n", " ").replace("\t", " ")
