"""The CLI's line contract under any bytes (Hypothesis) and under a generator of hostile lines: exit status 0
and exactly one output line per input line, in file mode and stdin mode, in process on a tiny checkpoint."""

import io
import random
import re
import sys
import tempfile
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from translate.cli import main

FAST = ["--beam", "2", "--max-len-a", "0", "--max-len-b", "4"]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, tiny_checkpoint) -> Path:
    tmp = tmp_path_factory.mktemp("robust")
    return tiny_checkpoint(tmp / "best.pt", "transformer", tmp / "cache")


def run(argv: list[str], stdin: bytes = b"") -> tuple[int, bytes, str]:
    """main(argv) with stdin, stdout and stderr replaced -> (exit status, stdout bytes, stderr text)."""
    fake_in = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    fake_in.isatty = lambda: False
    out, err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8"), io.StringIO()
    with mock.patch.object(sys, "stdin", fake_in), mock.patch.object(sys, "stdout", out), \
            mock.patch.object(sys, "stderr", err):  # fmt: skip
        status = main(argv)
    out.flush()
    return status, out.buffer.getvalue(), err.getvalue()


def input_lines(data: bytes) -> int:
    """Lines in `data` by the contract: one per b"\\n", plus a last line without one."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def through_every_mode(ckpt: Path, data: bytes, workdir: Path) -> dict[str, tuple[list[bytes], str]]:
    """data via -i FILE -o FILE, -i FILE to stdout, stdin streaming, stdin -o FILE -> mode: (lines, stderr);
    each run exits 0, its output is UTF-8 and ends with a newline (or is empty)."""
    src, dst = workdir / "in.txt", workdir / "out.txt"
    src.write_bytes(data)
    modes = {"file to file": ["-i", str(src), "-o", str(dst)], "file to stdout": ["-i", str(src)],
             "stdin streaming": [], "stdin to file": ["-o", str(dst)]}  # fmt: skip
    results = {}
    for mode, flags in modes.items():
        dst.unlink(missing_ok=True)
        status, out, err = run(["-c", str(ckpt), *FAST, *flags], stdin=data)
        assert status == 0, (mode, err[-500:])
        if "-o" in flags:
            assert out == b""
            out = dst.read_bytes()
        out.decode("utf-8")
        assert out == b"" or out.endswith(b"\n"), mode
        results[mode] = (out.split(b"\n")[:-1], err)
    return results


PIECES = st.one_of(
    st.binary(max_size=12),
    st.text(max_size=12).map(lambda t: t.encode("utf-8")),
    st.sampled_from([b"\n", b"\r", b"\r\n", b"\x00", b"\x07", b"\x0b", b"\x0c", b"\x1c", b"\xc2\x85", b"\x85",
                     "\u2028".encode(), "\u2029".encode(), "\ufeff".encode(), "\u200b".encode(), b"\xff",
                     b"\xed\xa0\x80", "\u202e".encode(), b" Dios es amor. ", b"   "]),
)  # fmt: skip


@settings(max_examples=20, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.lists(PIECES, max_size=10).map(b"".join))
def test_any_bytes_give_one_output_line_per_input_line(ckpt, data):
    with tempfile.TemporaryDirectory() as workdir:
        for mode, (lines, _) in through_every_mode(ckpt, data, Path(workdir)).items():
            assert len(lines) == input_lines(data), mode


ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
RTL = ["\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",  # Hebrew
       "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",  # Arabic
       "\u202eDios es amor\u202c", "\u200fLa luz.\u200e"]  # fmt: skip
WORDS = "Dios es amor y la luz en el principio creó los cielos tierra".split()


def hostile_lines(rng: random.Random, n: int) -> tuple[list[bytes], set[int]]:
    """n lines (bytes, no b"\\n") a new user might feed in -> (lines, 1-based numbers of invalid UTF-8)."""
    def words(k):
        return " ".join(rng.choice(WORDS) for _ in range(k))

    kinds = [
        lambda: words(rng.randint(1, 12)),
        lambda: "".join(chr(rng.choice([*range(0, 9), 11, 12, *range(14, 32), 127])) for _ in range(5)),
        lambda: words(3) + "\r" + words(2) + "\r",  # CR inside and at the end (the last one is dropped)
        lambda: words(2) + "\x00" + words(2),
        lambda: rng.choice(RTL),
        lambda: rng.choice(ZERO_WIDTH) * rng.randint(1, 4),
        lambda: words(2) + "".join(rng.choice(ZERO_WIDTH) for _ in range(3)) + words(1),
        lambda: "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029".join(WORDS[:4]),
        lambda: "",
        lambda: "   \t  ",
    ]
    lines = []
    for _ in range(n):
        line = rng.choice(kinds)().encode("utf-8")
        if rng.random() < 0.15:  # random bytes mixed in
            cut = rng.randint(0, len(line))
            junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 6))).replace(b"\n", b"\xff")
            line = line[:cut] + junk + line[cut:]
        lines.append(line)
    lines[n // 3] = words(2000).encode()
    lines[2 * n // 3] = words(10000).encode()
    bad = set()
    for i, line in enumerate(lines, 1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            bad.add(i)
    return lines, bad


def test_hostile_lines_keep_the_line_count_in_every_mode(ckpt, tmp_path):
    lines, bad = hostile_lines(random.Random(11), 120)
    assert bad  # the generator did mix invalid bytes in
    data = b"\n".join(lines) + b"\n"
    for mode, (out, err) in through_every_mode(ckpt, data, tmp_path).items():
        assert len(out) == len(lines), mode
        for line, got in zip(lines, out):
            if not line.strip(b" \t\r"):
                assert got == b"", mode
        warnings = [w for w in re.split(r"[\r\n]", err) if w.startswith("translate: warning:")]
        utf8 = [w for w in warnings if "not valid UTF-8" in w]
        assert len(utf8) == 1, mode  # one warning for all of them
        numbers = [int(x) for x in re.findall(r"\d+", utf8[0].split(":")[2])]  # "lines 2, 5, ... (18 lines)"
        assert numbers == sorted(bad)[:10] + ([len(bad)] if len(bad) > 10 else []), mode
        assert len(warnings) == 1, mode  # the 2,000- and 10,000-word lines are cut into parts, not truncated
        assert out[len(lines) // 3] and out[2 * len(lines) // 3], mode
