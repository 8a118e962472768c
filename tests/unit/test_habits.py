"""Two habits of issue 7, checked on the source of campaign/ (read with `ast`, not imported).

**No import cycle.** The graph has one node per module under campaign/ (a package is its
`__init__.py`) and an edge for each import that runs when the module is loaded: `import x`,
`from x import y` and relative imports at module level, in class bodies, `try` and plain `if`
blocks. Imports inside functions are left out (they run when called: a deliberate lazy import),
and so are those under `if TYPE_CHECKING:` (never run; its `else:` does run and counts).

What an import runs, modelled on Python's import system:
- `import a.b.c` and `from a.b.c import name` run `a/__init__.py`, `a/b/__init__.py` and
  `a/b/c.py`, so the edge goes to `a.b.c` *and* to each of its parent packages, except those that
  enclose the importing module itself: they began to run before it did (Python always loads a
  module's packages first), so importing from them runs nothing new. That is why a package
  importing its own children (`campaign/cli/__init__.py` loading its commands) is not a cycle,
  while `campaign.sending.x` importing `campaign.ledger.claims` does depend on
  `campaign/ledger/__init__.py`, and a cycle through that `__init__` is found.
- `from pkg import name` adds an edge to the submodule `pkg.name` when there is one. When `name`
  is not a submodule it is read from `pkg`'s namespace, so the edge goes to `pkg` even when `pkg`
  encloses the importer: a child module reading a name its package's `__init__` defines while
  that `__init__` imports the child is a real cycle (an ImportError when the `__init__` imports
  the child before defining the name). `from pkg import *` reads `pkg` likewise.

Cycles are the strongly connected components of that graph (Tarjan's algorithm); the failure
names each component's modules and one cycle through it, with the import lines.

**No long function without a reason.** A function or method whose length, from its `def` line to
its last line with the docstring's lines taken out (blank lines and comments count), is over
`LONG_FUNCTION` lines must say why in a comment starting `# Long:` followed by the reason, placed
at the top of its body: after the signature (and after the docstring, if it has one), before the
first statement. Nested functions are measured on their own (and are part of the outer length).
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import ROOT

PACKAGE = "campaign"
LONG_FUNCTION = 60
LONG_MARK = "# Long:"


# -- the import graph ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    """One edge: `source` (at `path`:`line`) needs `target`'s module body to have run."""

    source: str
    target: str
    path: str
    line: int


def package_modules(root: Path, package: str) -> dict[str, Path]:
    """Module name -> file for every module under `root/package`, packages as their __init__."""
    modules: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def load_time_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements that run when a module with this body is loaded."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue  # runs when called
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from load_time_imports(node.orelse)
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    yield from load_time_imports([child])
                elif isinstance(child, ast.ExceptHandler | ast.match_case):
                    yield from load_time_imports(child.body)


def _parents(module: str) -> list[str]:
    """`a.b.c` -> [`a`, `a.b`]."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a `from ... import` names (relative levels resolved)."""
    if node.level == 0:
        return node.module or ""
    base = (module if is_package else module.rpartition(".")[0]).split(".")
    if node.level - 1 >= len(base):
        raise AssertionError(f"{module}: relative import beyond the top-level package")
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _targets(
    module: str, is_package: bool, node: ast.Import | ast.ImportFrom, modules: dict[str, Path]
) -> list[str]:
    """The modules of the package whose bodies `node` needs run (see the module docstring)."""
    enclosing = {module, *_parents(module)}  # already running when `module` runs
    loaded: list[str] = []  # modules the statement imports (with their parent packages)
    read: list[str] = []  # packages a name is read from, enclosing or not
    if isinstance(node, ast.Import):
        loaded = [alias.name for alias in node.names]
    else:
        base = _resolve(module, is_package, node)
        loaded.append(base)
        for alias in node.names:
            if f"{base}.{alias.name}" in modules:
                loaded.append(f"{base}.{alias.name}")
            else:
                read.append(base)
    needed = [m for name in loaded for m in (*_parents(name), name) if m not in enclosing]
    needed += [m for m in read if m != module]
    return list(dict.fromkeys(m for m in needed if m in modules))


def import_graph(root: Path, package: str) -> dict[str, dict[str, Import]]:
    """module -> {module it needs at load time -> the first import that says so}."""
    modules = package_modules(root, package)
    graph: dict[str, dict[str, Import]] = {name: {} for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in load_time_imports(tree.body):
            for target in _targets(name, is_package, node, modules):
                relative = path.relative_to(root).as_posix()
                graph[name].setdefault(target, Import(name, target, relative, node.lineno))
    return graph


def strongly_connected(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan's algorithm: the components with more than one module (each one holds a cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def one_cycle(graph: dict[str, dict[str, Import]], component: list[str]) -> list[Import]:
    """A shortest cycle through the component's first module, as the imports that make it."""
    start, members = component[0], set(component)
    came_by: dict[str, Import] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for target, edge in sorted(graph[node].items()):
                if target in members and target not in came_by:
                    came_by[target] = edge
                    following.append(target)
        if start in came_by:
            break
        frontier = following
    edges = [came_by[start]]
    while edges[-1].source != start:
        edges.append(came_by[edges[-1].source])
    return edges[::-1]


def cycle_report(graph: dict[str, dict[str, Import]]) -> list[str]:
    """One line per cycle: its modules, then the import lines that close it."""
    lines = []
    for component in strongly_connected(graph):
        steps = "; ".join(
            f"{e.path}:{e.line} imports {e.target}" for e in one_cycle(graph, component)
        )
        lines.append(f"import cycle among {', '.join(component)} ({steps})")
    return lines


def test_no_import_cycle_in_campaign() -> None:
    graph = import_graph(ROOT, PACKAGE)
    assert len(graph) > 50, "expected the whole package, found few modules"
    assert sum(len(targets) for targets in graph.values()) > 100, "expected many imports"
    cycles = cycle_report(graph)
    assert not cycles, (
        "Break each cycle (move the import into the function that needs it, with a comment, "
        "or move the shared name to a lower module):\n" + "\n".join(cycles)
    )


def _write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_import_checker_finds_a_cycle_and_reads_imports_as_python_runs_them(
    tmp_path: Path,
) -> None:
    _write_tree(
        tmp_path,
        {
            # A package loading its own children: not a cycle (the children use it freely).
            "pkg/__init__.py": "from pkg.kids import one\n",
            "pkg/kids/__init__.py": "from . import one\nfrom .two import VALUE\n",
            "pkg/kids/one.py": "import pkg.kids.two\nfrom pkg import kids\n",
            "pkg/kids/two.py": "VALUE = 2\n",
            # A real cycle, closed through a package's __init__: importing pkg.b.inner runs
            # pkg/b/__init__.py, which imports pkg.a.
            "pkg/a.py": "from pkg.b.inner import THING\n",
            "pkg/b/__init__.py": "from ..a import *\n",
            "pkg/b/inner.py": "THING = 1\n",
            # Not edges: a lazy import, a TYPE_CHECKING one (its else: branch does run).
            "pkg/lazy.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from pkg.c import C\nelse:\n    import json\n"
                "def f():\n    import pkg.c\n"
                "class K:\n    try:\n        from pkg.kids import two\n    except ImportError:\n"
                "        import pkg.b.inner\n"
            ),
            "pkg/c.py": "import pkg.lazy\n",
            # A child reading a name its package's __init__ defines, while that __init__
            # imports the child first: a cycle (Python raises ImportError, whichever is imported).
            "pkg/d/__init__.py": "from pkg.d.child import f\nNAME = 1\n",
            "pkg/d/child.py": "from pkg.d import NAME\ndef f():\n    return NAME\n",
        },
    )
    graph = import_graph(tmp_path, "pkg")
    assert set(graph["pkg"]) == {"pkg.kids", "pkg.kids.one"}
    assert set(graph["pkg.kids"]) == {"pkg.kids.one", "pkg.kids.two"}
    assert set(graph["pkg.kids.one"]) == {"pkg.kids.two"}  # enclosing packages: no edge
    assert set(graph["pkg.a"]) == {"pkg.b", "pkg.b.inner"}
    # Only the class body's `try` and its `except`.
    assert set(graph["pkg.lazy"]) == {"pkg.kids", "pkg.kids.two", "pkg.b", "pkg.b.inner"}
    assert set(graph["pkg.c"]) == {"pkg.lazy"}
    assert strongly_connected(graph) == [["pkg.a", "pkg.b"], ["pkg.d", "pkg.d.child"]]
    assert cycle_report(graph) == [
        "import cycle among pkg.a, pkg.b "
        "(pkg/a.py:1 imports pkg.b; pkg/b/__init__.py:1 imports pkg.a)",
        "import cycle among pkg.d, pkg.d.child "
        "(pkg/d/__init__.py:1 imports pkg.d.child; pkg/d/child.py:1 imports pkg.d)",
    ]


# -- long functions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LongFunction:
    path: str
    line: int
    name: str
    length: int
    reason: str | None  # the text after `# Long:`, or None


def _docstring_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    if ast.get_docstring(node, clean=False) is None:
        return 0
    first = node.body[0]
    assert first.end_lineno is not None
    return first.end_lineno - first.lineno + 1


def _first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno, *(d.lineno for d in decorators)])


def _reason(
    node: ast.FunctionDef | ast.AsyncFunctionDef, comments: dict[int, str], end: int
) -> str | None:
    """The `# Long:` reason at the top of the body: from the `def` line to the first statement."""
    statements = node.body[1:] if _docstring_lines(node) else node.body
    stop = _first_line(statements[0]) if statements else end + 1
    for line in range(node.lineno, stop):
        text = comments.get(line, "")
        if text.startswith(LONG_MARK) and text[len(LONG_MARK) :].strip():
            return text[len(LONG_MARK) :].strip()
    return None


def _functions(
    node: ast.AST, prefix: str = ""
) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function and method under `node`, nested ones included, with its qualified name."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}{child.name}.")
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            yield prefix + child.name, child
            yield from _functions(child, f"{prefix}{child.name}.<locals>.")
        else:
            yield from _functions(child, prefix)


def long_functions(root: Path, package: str, limit: int = LONG_FUNCTION) -> list[LongFunction]:
    """Every function under `root/package` longer than `limit` lines, docstring excluded."""
    found: list[LongFunction] = []
    for path in sorted((root / package).rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        comments = {
            token.start[0]: token.string
            for token in tokenize.generate_tokens(io.StringIO(source).readline)
            if token.type == tokenize.COMMENT
        }
        relative = path.relative_to(root).as_posix()
        for name, function in _functions(ast.parse(source, filename=str(path))):
            end = function.end_lineno
            assert end is not None
            length = end - function.lineno + 1 - _docstring_lines(function)
            if length > limit:
                reason = _reason(function, comments, end)
                found.append(LongFunction(relative, function.lineno, name, length, reason))
    return found


def test_every_long_function_in_campaign_says_why() -> None:
    found = long_functions(ROOT, PACKAGE)
    unexplained = [
        f"{f.path}:{f.line} {f.name} is {f.length} lines" for f in found if f.reason is None
    ]
    assert not unexplained, (
        f"Functions over {LONG_FUNCTION} lines (docstring excluded) need a `{LONG_MARK} <reason>` "
        "comment at the top of the body (after the signature and docstring), or a split:\n"
        + "\n".join(unexplained)
    )


def test_the_length_checker_measures_and_reads_the_reason(tmp_path: Path) -> None:
    body = "    x = 1\n" * 4
    _write_tree(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/m.py": (
                # 1 + 4 = 5 lines: at the limit, fine.
                "def fits():\n"
                + body
                # 7 lines, 2 of them docstring: 5 counted, fine.
                + 'def documented():\n    """Doc\n    string."""\n'
                + body
                # 7 lines, no reason: one inside a string is not a comment, one needs a reason
                # after the colon, one after the first statement is too late.
                + 'def too_long(\n    a="# Long: in a string",\n):\n    # Long:\n    y = 0\n'
                + "    # Long: too late\n    x = 1\n"
                # 6 lines with a reason after the docstring; the decorator is not counted.
                + "@staticmethod\n"
                + 'def explained():\n    """Doc."""\n    # Long: a flat list, kept in order.\n'
                + body
                + "class C:\n"
                + "    async def method(self, a: int,\n                     b: int) -> None:\n"
                + "\n".join(f"        x = {i}" for i in range(4))
                + "\n"
            ),
        },
    )
    found = long_functions(tmp_path, "pkg", limit=5)
    assert found == [
        LongFunction("pkg/m.py", 13, "too_long", 7, None),
        LongFunction("pkg/m.py", 21, "explained", 6, "a flat list, kept in order."),
        LongFunction("pkg/m.py", 29, "C.method", 6, None),
    ]
