"""The package's shape (DESIGN.md): layers that only point down (import-linter contracts in pyproject.toml),
no import cycles between files, and function-level imports of raykd modules only with a stated reason."""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "raykd"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(p, package.parent): p for p in sorted(package.rglob("*.py"))}


def imported_modules(node: ast.Import | ast.ImportFrom, importer: str, is_package: bool, known: set[str]) -> set[str]:
    """raykd modules an import statement names: `from a.b import c` is module a.b.c when that is a module,
    else a.b (as import-linter's grimp resolves it); relative imports are resolved against the importer."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = importer.split(".") if is_package else importer.split(".")[:-1]
            package = package[:len(package) - (node.level - 1)]
            base = ".".join(package + ([base] if base else []))
        targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    found = set()
    for name in targets:
        while name and name not in known:  # `import a.b.C` of a class: its module
            name = name.rpartition(".")[0]
        if name.startswith("raykd"):
            found.add(name)
    return found


def import_graph(package: Path = PACKAGE) -> tuple[dict[str, set[str]], list[tuple[str, int, str]]]:
    """({module: raykd modules it imports anywhere in the file}, [(module, line, statement) of imports
    of raykd modules inside functions])."""
    mods = modules(package)
    known = set(mods)
    graph: dict[str, set[str]] = {}
    nested: list[tuple[str, int, str]] = []
    for name, path in mods.items():
        source = path.read_text()
        tree = ast.parse(source)
        is_package = path.name == "__init__.py"
        graph[name] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[name] |= imported_modules(node, name, is_package, known) - {name}
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, (ast.Import, ast.ImportFrom)) and imported_modules(node, name, is_package, known):
                        nested.append((name, node.lineno, ast.get_source_segment(source, node)))
    return graph, nested


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_between_files():
    graph, _ = import_graph()
    assert len(graph) > 100  # the whole package was read
    assert cycles(graph) == []


def test_cycle_finder_finds_a_cycle_through_a_function_level_import(tmp_path):
    pkg = tmp_path / "raykd"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from raykd.b import f\n")
    (pkg / "b.py").write_text("def f():\n    from raykd import a  # hidden inside a function\n")
    (pkg / "c.py").write_text("import raykd.a\n")
    graph, nested = import_graph(pkg)
    assert cycles(graph) == [["raykd.a", "raykd.b"]]
    assert [(m, line) for m, line, _ in nested] == [("raykd.b", 2)]


def import_group(lines: list[str], line: int) -> list[str]:
    """The block of consecutive import lines around 1-based `line`, and the line just above it."""
    is_import = lambda text: text.strip().startswith(("from ", "import ")) or text.strip().startswith(")")
    first = last = line - 1
    while first > 0 and is_import(lines[first - 1]):
        first -= 1
    while last + 1 < len(lines) and is_import(lines[last + 1]):
        last += 1
    return lines[max(first - 1, 0):last + 1]


def test_function_level_imports_of_raykd_modules_say_why():
    """An import of a raykd module inside a function carries its reason as a comment (in its block of imports
    or on the line above), e.g. keeping torch and Ray out of `raykd --help`."""
    _, nested = import_graph()
    sources = {m: p.read_text().splitlines() for m, p in modules().items()}
    unexplained = [f"{module}:{line}: {statement}" for module, line, statement in nested
                   if not any("#" in text for text in import_group(sources[module], line))]
    assert unexplained == []


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.fail("lint-imports is not installed: pip install -e '.[test]' installs import-linter")
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([exe, "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_layer_contracts_hold_and_fail_when_losses_import_train(tmp_path):
    kept = lint_imports(ROOT)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "0 broken" in kept.stdout
    copy = tmp_path / "project"
    shutil.copytree(PACKAGE, copy / "raykd", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    infonce = copy / "raykd" / "losses" / "infonce.py"
    infonce.write_text(infonce.read_text() + "\nfrom raykd.train import loop  # a loss that knows the trainer\n")
    broken = lint_imports(copy)
    assert broken.returncode != 0
    assert "raykd.losses.infonce -> raykd.train.loop" in broken.stdout
    assert "1 broken" in broken.stdout
