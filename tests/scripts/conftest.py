"""scripts/ on sys.path, as when a script runs: the tests import the corpus builder's helper modules
(bible_clean, bible_split) by the same names scripts/build_bible_corpus.py uses."""

import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))
