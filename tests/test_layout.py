"""House rules a test can check: imports point toy -> minifoca <- scaled, minifoca never loads
torch or cupy, and minifoca stays small enough to read in one sitting (STYLE.md rules 2 and 3)."""
import io
import pkgutil
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MAX_FILE_LINES, MAX_CODE_LINES = 300, 1000


def modules(package: str) -> list[str]:
    return [f"{package}.{m.name}" for m in pkgutil.iter_modules([str(REPO / package)])]


@pytest.mark.parametrize("package,forbidden", [("minifoca", ("torch", "cupy", "scaled", "toy")),
                                               ("toy", ("torch", "cupy", "scaled"))])
def test_imports_point_one_way(package, forbidden):
    """Import every module of the package in a fresh interpreter and list what got loaded.
    (CuPy is reachable only through minifoca.backend.get_backend("cupy"), called at run time.)"""
    code = (f"import importlib, sys\nfor m in {modules(package)!r}: importlib.import_module(m)\n"
            f"print(sorted({{n.split('.')[0] for n in sys.modules}} & {set(forbidden)!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"{package} imports {out.stdout.strip()}"


def code_lines(path: Path) -> int:
    """Lines holding code: not blank, not only a comment, not part of a docstring."""
    lines, prev = set(), tokenize.INDENT
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        is_doc = tok.type == tokenize.STRING and prev in (tokenize.INDENT, tokenize.NEWLINE, tokenize.DEDENT)
        if tok.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                            tokenize.DEDENT, tokenize.ENDMARKER) and not is_doc:
            lines.update(range(tok.start[0], tok.end[0] + 1))
        if tok.type not in (tokenize.COMMENT, tokenize.NL):
            prev = tok.type
    return len(lines)


def test_minifoca_line_budget():
    files = sorted((REPO / "minifoca").glob("*.py"))
    long = {f.name: n for f in files if (n := len(f.read_text().splitlines())) > MAX_FILE_LINES}
    assert not long, f"minifoca files over {MAX_FILE_LINES} lines: {long}; split them"
    total = sum(code_lines(f) for f in files)
    assert total <= MAX_CODE_LINES, f"minifoca has {total} code lines (budget {MAX_CODE_LINES})"
