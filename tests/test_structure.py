"""The code stays readable: no function outside the Triton kernels passes 100 lines (STYLE.md, "a loop you
can read"); a longer one is asking to be split into named steps."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 100


def function_lengths():
    for path in sorted([*ROOT.glob("translate/**/*.py"), *ROOT.glob("scripts/*.py")]):
        if path.name.startswith("triton_"):  # kernels: one @triton.jit body per tile loop
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                yield f"{path.relative_to(ROOT)}:{node.name}", node.end_lineno - start + 1


def test_no_function_passes_100_lines():
    lengths = dict(function_lengths())
    assert len(lengths) > 500  # the walk saw the tree
    assert {name: n for name, n in lengths.items() if n > LIMIT} == {}
