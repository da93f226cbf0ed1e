"""House rules a test can check: imports point toy -> minifoca <- scaled, minifoca never loads
torch or cupy, and minifoca stays small enough to read in one sitting (STYLE.md rules 2 and 3);
no two of the project's modules import each other, even late; the folders stay by concern
(scripts/ holds folders, not loose files); every path the code and the pages name exists; the
README stays a front door; `make help` lists every target; docs/algorithm.md's defaults are the
configs'."""
import ast
import io
import os
import pkgutil
import re
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


# --- no import circle -------------------------------------------------------------------------------
PACKAGES = ("minifoca", "toy", "scaled", "scripts")


def project_modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of the project's packages (a package is its __init__)."""
    mods = {}
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return mods


def imports_of(name: str, path: Path, mods: dict) -> set[str]:
    """The project modules a file imports anywhere in it (late imports inside functions too)."""
    def resolve(dotted):  # the longest project module that the dotted name starts with
        while dotted and dotted not in mods:
            dotted = dotted.rpartition(".")[0]
        return dotted

    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {resolve(a.name) for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the file's package, one level up per extra dot
                base = name.split(".")[:None if path.name == "__init__.py" else -1]
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            # `from pkg import submodule` imports that submodule; any other name, the module itself
            out |= {f"{mod}.{a.name}" if f"{mod}.{a.name}" in mods else resolve(mod) for a in node.names}
    return out - {"", name}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on.discard(comp[-1])
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_two_modules_import_each_other():
    mods = project_modules()
    graph = {name: imports_of(name, path, mods) & set(mods) for name, path in mods.items()}
    assert graph["scaled.foca"] >= {"scaled.weak_graph", "scaled.dist"}, "the import reader lost its way"
    assert not circles(graph), f"modules that import each other (late imports count): {circles(graph)}"


def test_the_circle_finder_finds_a_late_import():
    mods = {"a": None, "b": None, "c": None}
    assert circles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]
    late = "def f():\n    from .a import g  # imported late\n"
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "foca_layout_late_import.py"
    tmp.write_text(late)
    try:
        assert imports_of("b", tmp, mods) == {"a"}
    finally:
        tmp.unlink()


# --- folders by concern, pages, links ---------------------------------------------------------------
def test_scripts_holds_folders_by_concern():
    loose = sorted(p.name for p in (REPO / "scripts").iterdir() if p.is_file())
    assert len(loose) <= 10, f"{len(loose)} files directly in scripts/: {loose}; put each in the folder of its concern"
    assert {"studies", "crosscheck", "gpu", "bench", "dev"} <= {p.name for p in (REPO / "scripts").iterdir()}


def source_files(*patterns: str) -> list[Path]:
    skip = {".venv", ".git", "results", "runs", "figures", "report", ".cache", "build"}
    return sorted(p for pat in patterns for p in REPO.rglob(pat)
                  if not skip & set(p.relative_to(REPO).parts) and "egg-info" not in str(p))


def test_every_docs_page_named_in_the_code_exists():
    """A docs/*.md cited in a docstring, a comment or a --help text is a page of this repository."""
    named = {(m, f.relative_to(REPO)) for f in source_files("*.py")
             for m in re.findall(r"(?<![\w./-])docs/[\w./-]*\.md", f.read_text())}
    assert any(m == "docs/algorithm.md" for m, _ in named), "the reader found no docs/ reference at all"
    missing = sorted(f"{f}: {m}" for m, f in named if not (REPO / m).is_file())
    assert not missing, "pages named in the code that do not exist:\n" + "\n".join(missing)


# Pages under docs/ that work in progress adds; a link to one may wait for it (drop the entry once it lands).
PENDING: dict[str, str] = {}  # docs pages named before they exist: {name: the issue writing it}


# Paths into the project's own folders, as code and pages write them (a * is a glob; <...> a placeholder).
PATH = re.compile(r"(?<![\w./$-])((?:minifoca|toy|scaled|scripts|tests|docs|mk)/[\w./*-]*\.(?:py|sh|md|mk|png))")


def test_every_project_path_named_in_code_and_pages_exists():
    """After a file moves, no docstring, Makefile line, page or test still names its old place."""
    texts = source_files("*.py", "*.md", "*.sh", "*.mk") + [REPO / "Makefile"]
    stale = sorted({f"{f.relative_to(REPO)}: {m}" for f in texts for m in PATH.findall(f.read_text())
                    if not any(REPO.glob(m)) and m.removeprefix("docs/") not in PENDING})
    assert not stale, "paths that do not exist:\n" + "\n".join(stale)


# Dotted module paths (`python -m scripts.gpu.check`, `from scaled.foca import ...`) into the project's packages.
MODULE = re.compile(r"(?:-m |from |import |[`\"'])((?:minifoca|toy|scaled|scripts)\.[a-z_]\w*)")


def test_every_module_named_in_code_and_pages_exists():
    """The first step below a package (scripts.gpu, scaled.foca) is one of its modules or folders:
    an old `python -m` path after a move is caught here."""
    texts = source_files("*.py", "*.md", "*.sh", "*.mk") + [REPO / "Makefile"]
    stale = sorted({f"{f.relative_to(REPO)}: {m}" for f in texts for m in MODULE.findall(f.read_text())
                    if not (REPO / m.replace(".", "/")).is_dir() and not (REPO / (m.replace(".", "/") + ".py")).is_file()})
    assert not stale, "modules that do not exist:\n" + "\n".join(stale)


def test_every_link_in_the_readme_and_docs_resolves():
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "scripts" / "gpu" / "README.md"]
    dead = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            if not path.exists() and not (path.parent == REPO / "docs" and path.name in PENDING):
                dead.append(f"{page.relative_to(REPO)} -> {target}")
    assert not dead, "links to nothing:\n" + "\n".join(dead)


def test_the_readme_is_a_front_door():
    n = len((REPO / "README.md").read_text().splitlines())
    assert n <= 250, f"README.md has {n} lines (at most 250): move the detail to a page under docs/"


# --- make help --------------------------------------------------------------------------------------
def make_targets() -> set[str]:
    """Every .PHONY target of the Makefile and mk/*.mk, with := variables expanded."""
    text = "\n".join(p.read_text() for p in [REPO / "Makefile", *sorted((REPO / "mk").glob("*.mk"))])
    var = dict(re.findall(r"^(\w+)\s*:=\s*(.*)$", text, re.M))
    phony = " ".join(re.findall(r"^\.PHONY:(.*)$", text, re.M))
    return set(re.sub(r"\$\((\w+)\)", lambda m: var.get(m[1], ""), phony).split())


def test_make_help_lists_every_target():
    out = subprocess.run(["make", "-s", "help", f"PY={sys.executable}"], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    targets = make_targets()
    assert {"toy", "test", "crosscheck", "cifar10", "report", "mutate"} <= targets, targets
    unlisted = sorted(t for t in targets - {"help"} if not re.search(rf"make {re.escape(t)}(?![\w-])", out.stdout))
    assert not unlisted, f"`make help` does not list: {unlisted}"


# --- docs/algorithm.md's defaults ---------------------------------------------------------------------
def test_the_algorithm_page_defaults_are_the_configs():
    """Its table `| field | meaning | minifoca | scaled | source |` quotes the dataclass defaults."""
    pytest.importorskip("torch")
    from minifoca.config import Config
    from scaled.config import ScaledConfig

    rows = re.findall(r"^\| `(\w+)` \| [^|]+ \| ([^|]+) \| ([^|]+) \| [^|]+ \|$",
                      (REPO / "docs" / "algorithm.md").read_text(), re.M)
    assert len(rows) >= 20, f"only {len(rows)} default rows found in docs/algorithm.md"

    def shown(v):
        return ", ".join(map(str, v)) if isinstance(v, tuple) else str(v)

    wrong = [f"{field}: {layer} shows {cell.strip()}, the config has {shown(getattr(cfg, field))}"
             for field, *cells in rows for cfg, layer, cell in zip((Config(), ScaledConfig()), ("minifoca", "scaled"), cells)
             if cell.strip() != "-" and cell.strip() != shown(getattr(cfg, field))]
    assert not wrong, "docs/algorithm.md's defaults table:\n" + "\n".join(wrong)
