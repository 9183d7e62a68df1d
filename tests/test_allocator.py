"""translate/allocator.py: entry points re-execute once under mimalloc, log it, can turn it off, fall back.

Each case runs a fresh interpreter (an allocator is chosen when a process starts); none imports torch, so each
takes a fraction of a second.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from translate import allocator

ROOT = Path(__file__).resolve().parents[1]
HAVE_MIMALLOC = sys.platform.startswith("linux") and allocator.library_path() is not None
needs_mimalloc = pytest.mark.skipif(not HAVE_MIMALLOC, reason="cmeel-mimalloc has no wheel for this platform")

# preload() as an entry point calls it, then what the process ended up with
PROBE = """
import os, sys
from translate import allocator
allocator.preload()
print(os.getpid(), allocator.loaded(), allocator.describe(), repr(os.environ.get("LD_PRELOAD", "")), sep="|")
"""


def env(**extra: str) -> dict:
    base = {k: v for k, v in os.environ.items()
            if k not in (allocator.ENV, allocator.EXEC_MARK, allocator.PURGE_ENV, "LD_PRELOAD")}  # fmt: skip
    return base | {"PYTHONPATH": str(ROOT)} | extra


def probe(code: str = PROBE, **extra: str) -> tuple[list[str], str]:
    p = subprocess.run([sys.executable, "-c", code], env=env(**extra), capture_output=True, text=True,
                       timeout=60)  # fmt: skip
    assert p.returncode == 0, p.stderr
    return p.stdout.strip().split("|"), p.stderr


@needs_mimalloc
def test_preload_reexecutes_once_under_mimalloc_and_gives_children_the_users_ld_preload():
    (pid, loaded, described, preload), stderr = probe(LD_PRELOAD="")
    assert loaded == "True" and described == "mimalloc (purge delay off)"
    assert preload == "''"  # taken out again: programs this process starts get the user's environment
    assert stderr == ""
    # a library the user preloads stays preloaded for the children (and in this process)
    user_lib = allocator.library_path().parent / "libmimalloc.so.3"
    (_, loaded, _, preload), _ = probe(LD_PRELOAD=str(user_lib))
    assert loaded == "True" and preload == repr(str(user_lib))


@needs_mimalloc
def test_the_purge_delay_the_user_sets_is_kept_and_logged():
    (_, loaded, described, _), _ = probe(MIMALLOC_PURGE_DELAY="10")
    assert loaded == "True" and described == "mimalloc (purge delay 10 ms)"


def test_translate_allocator_system_runs_on_glibc_without_reexecuting():
    (_, loaded, described, preload), stderr = probe(TRANSLATE_ALLOCATOR="system")
    assert loaded == "False" and described == "system (glibc malloc; TRANSLATE_ALLOCATOR=system)"
    assert preload == "''" and stderr == ""


def test_a_library_that_does_not_load_warns_once_and_runs_on_glibc(tmp_path):
    """ld.so ignores a preload it cannot open: the re-executed process sees that and does not try again."""
    missing = tmp_path / "libmimalloc.so"
    code = f"from pathlib import Path\nfrom translate import allocator\n" \
           f"allocator.library_path = lambda: Path({str(missing)!r})\n" + PROBE  # fmt: skip
    if not sys.platform.startswith("linux"):
        pytest.skip("preloading is Linux-only")
    (_, loaded, described, preload), stderr = probe(code)
    assert loaded == "False" and preload == "''"
    assert described == f"system (glibc malloc; {missing} did not load (see the ld.so message above))"
    warnings = [line for line in stderr.splitlines() if line.startswith("warning: allocator:")]
    assert warnings == [f"warning: allocator: {missing} did not load (see the ld.so message above); "
                        "running on the system allocator"]  # fmt: skip


def test_a_missing_package_warns_in_one_line_and_does_not_reexecute(monkeypatch, capsys):
    """In this process: with no library found, preload() must neither exec nor fail."""
    monkeypatch.delenv(allocator.ENV, raising=False)
    monkeypatch.delenv(allocator.EXEC_MARK, raising=False)
    monkeypatch.setattr(allocator, "loaded", lambda: False)
    monkeypatch.setattr(allocator, "library_path", lambda: None)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(os, "execve", lambda *a: pytest.fail("re-executed without a library"))
    monkeypatch.setattr(allocator, "_note", "")
    allocator.preload()
    err = capsys.readouterr().err.splitlines()
    assert err == ["warning: allocator: mimalloc not found (pip install cmeel-mimalloc, or "
                   "TRANSLATE_ALLOCATOR=system to silence this); running on the system allocator"]
    assert allocator.describe().startswith("system (glibc malloc; mimalloc not found")


def test_an_unknown_value_is_one_line_and_exit_status_2():
    p = subprocess.run([sys.executable, "-c", PROBE], env=env(TRANSLATE_ALLOCATOR="jemalloc"),
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip().splitlines() == [
        "error: TRANSLATE_ALLOCATOR='jemalloc': expected one of mimalloc, system"
    ]


BAD_VALUE = "error: TRANSLATE_ALLOCATOR='?': expected one of mimalloc, system"
ENTRY_POINTS = [
    ["-m", "translate.train"],
    ["-m", "translate.evaluate"],
    ["-m", "translate.cli", "Dios es amor."],
    ["-m", "translate.serve"],
    ["scripts/bench_train.py"],
    ["scripts/bench_decode.py"],
    ["scripts/bench_serve.py"],
    ["scripts/bench_attention.py"],
]


@pytest.mark.parametrize("argv", ENTRY_POINTS, ids=lambda a: a[-1] if a[0] != "-m" else a[1])
def test_every_computing_entry_point_preloads_before_it_imports_torch(argv):
    """An unknown TRANSLATE_ALLOCATOR stops the program in preload(): that it stops with this error, and with
    torch not yet imported, shows preload() comes first (an allocator must load before torch does)."""
    cmd = [sys.executable, "-X", "importtime", *argv]
    bad = env(TRANSLATE_ALLOCATOR="?")
    p = subprocess.run(cmd, cwd=ROOT, env=bad, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stderr[-2000:]
    assert p.stderr.strip().splitlines()[-1] == BAD_VALUE
    lines = p.stderr.splitlines()
    imported = [line.rsplit("|", 1)[-1].strip() for line in lines if line.startswith("import time:")]
    assert "translate.allocator" in imported and "torch" not in imported


def test_the_console_command_preloads_first():
    script = Path(sys.executable).with_name("translate")
    if not script.exists():
        pytest.skip("the translate console script is not installed next to this interpreter")
    p = subprocess.run([str(script), "x"], env=env(TRANSLATE_ALLOCATOR="?"), capture_output=True, text=True,
                       timeout=60)  # fmt: skip
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [BAD_VALUE]
