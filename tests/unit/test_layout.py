"""The README's Layout section and the tree agree (issue 7: the repository tells the truth).

The section is a list: a top-level item names a path from the repository root (a folder ends with
`/`), an indented item names a path inside the last top-level folder. Every listed path must exist,
and every package, subpackage and module under campaign/ must be listed (`__init__.py` may be).
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import ROOT

README = ROOT / "README.md"
PACKAGE = "campaign"
_ITEM = re.compile(r"^(?P<indent> *)- `(?P<path>[^`]+)`")


def layout_section(text: str) -> list[str]:
    """The lines of the README's `## Layout` section (up to the next `## ` heading)."""
    lines = text.splitlines()
    try:
        start = lines.index("## Layout") + 1
    except ValueError:
        raise AssertionError("README.md has no '## Layout' section") from None
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def listed_paths(section: list[str]) -> list[str]:
    """Repository-relative paths named by the section's items, in order."""
    paths: list[str] = []
    parent: str | None = None
    for line in section:
        item = _ITEM.match(line)
        if item is None:
            continue
        path = item["path"]
        if not item["indent"]:
            parent = path
            paths.append(path)
            continue
        assert parent is not None and parent.endswith("/"), (
            f"README Layout: {path!r} is indented under {parent!r}, which is not a folder"
        )
        paths.append(parent + path)
    return paths


def code_paths(root: Path) -> set[str]:
    """Every package (as `dir/`) and module under campaign/, except `__init__.py` files."""
    found: set[str] = set()
    for path in (root / PACKAGE).rglob("*"):
        if "__pycache__" in path.parts:
            continue
        relative = path.relative_to(root).as_posix()
        if path.is_dir() and (path / "__init__.py").exists():
            found.add(relative + "/")
        elif path.suffix == ".py" and path.name != "__init__.py":
            found.add(relative)
    return found


def test_every_listed_path_exists() -> None:
    listed = listed_paths(layout_section(README.read_text(encoding="utf-8")))
    assert len(listed) > 10, "README Layout: expected a list of paths, found almost none"
    missing = [p for p in listed if not (ROOT / p.rstrip("/")).exists()]
    assert not missing, (
        "README Layout lists paths that do not exist (rename or remove these lines): "
        + ", ".join(missing)
    )


def test_every_package_and_module_is_listed() -> None:
    listed = set(listed_paths(layout_section(README.read_text(encoding="utf-8"))))
    unlisted = sorted(code_paths(ROOT) - listed)
    assert not unlisted, (
        "README Layout does not list these packages/modules (add one line each): "
        + ", ".join(unlisted)
    )


def test_listed_paths_are_not_repeated() -> None:
    listed = listed_paths(layout_section(README.read_text(encoding="utf-8")))
    repeated = sorted({p for p in listed if listed.count(p) > 1})
    assert not repeated, f"README Layout lists these paths twice: {', '.join(repeated)}"


def test_the_parser_reads_nesting_and_finds_drift(tmp_path: Path) -> None:
    # The checks above are only as good as the parser: a small tree and section, both ways wrong.
    (tmp_path / PACKAGE / "pkg").mkdir(parents=True)
    for name in ("__init__.py", "top.py", "pkg/__init__.py", "pkg/mod.py", "pkg/new.py"):
        (tmp_path / PACKAGE / name).write_text("")
    section = [
        "Intro text with `campaign/not_an_item.py` inline.",
        "- `campaign/pkg/` — a package",
        "  - `mod.py` — a module",
        "  - `gone.py` — listed, not in the tree",
        "- `campaign/top.py` — a top-level module",
        "",
    ]
    listed = listed_paths(section)
    assert listed == [
        "campaign/pkg/",
        "campaign/pkg/mod.py",
        "campaign/pkg/gone.py",
        "campaign/top.py",
    ]
    assert code_paths(tmp_path) - set(listed) == {"campaign/pkg/new.py"}
    assert [p for p in listed if not (tmp_path / p.rstrip("/")).exists()] == [
        "campaign/pkg/gone.py"
    ]
