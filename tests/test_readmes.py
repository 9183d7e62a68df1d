"""The READMEs are reference: every file path they name exists, every link between them lands on a file and a
heading that exist, and each package README ends with its "to add a ..." section (STYLE.md 16, 19)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
READMES = sorted([ROOT / "README.md", *ROOT.glob("translate/*/README.md")])
PATH = re.compile(r"(?<![\w/.-])((?:translate|scripts|tests|conf)/[\w./-]*\.(?:py|yaml))(?![\w*{<])")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchor(heading: str) -> str:
    """GitHub's id of a Markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {anchor(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_a_readme_names_exists(readme):
    missing = sorted({p for p in PATH.findall(readme.read_text(encoding="utf-8")) if not (ROOT / p).exists()})
    assert missing == []


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_lands_on_a_file_and_a_heading(readme):
    broken = []
    for target in LINK.findall(readme.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file, _, fragment = target.partition("#")
        path = (readme.parent / file).resolve() if file else readme
        if not path.exists() or (fragment and path.suffix == ".md" and fragment not in anchors(path)):
            broken.append(target)
    assert broken == []


def test_anchor_follows_github():
    assert anchor("Pretrained Marian / OPUS-MT models (`marian.py`, `translate import marian`)") == (
        "pretrained-marian--opus-mt-models-marianpy-translate-import-marian"
    )
    assert anchor("The settings' bounds (`SearchConfig`)") == "the-settings-bounds-searchconfig"


@pytest.mark.parametrize("readme", READMES[1:], ids=lambda p: str(p.relative_to(ROOT)))
def test_each_package_readme_ends_with_its_to_add_section(readme):
    headings = [line for line in readme.read_text(encoding="utf-8").splitlines() if line.startswith("## ")]
    assert headings[-1].startswith("## To add a")
