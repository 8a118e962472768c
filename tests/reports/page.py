"""Reading a report page in tests: lxml, and a tiny CSS-like selector (no cssselect dependency)."""

from __future__ import annotations

import re

import lxml.html
from lxml.html import HtmlElement


def parse(page: str) -> HtmlElement:
    return lxml.html.document_fromstring(page)


def one(doc: HtmlElement, selector: str) -> HtmlElement:
    found = doc.xpath(_xpath(selector))
    assert len(found) == 1, f"{selector}: {len(found)} elements"
    return found[0]


def _xpath(selector: str) -> str:
    # A tiny subset of CSS (#id, tag, .class, [attr=value], descendant), enough for these tests,
    # without adding cssselect as a dependency.
    steps = []
    for part in selector.split():
        m = re.fullmatch(r"([a-z0-9]*)(#[\w-]+)?((?:\.[\w-]+)*)((?:\[[\w-]+=[^\]]*\])*)", part)
        assert m, part
        tag, ident, classes, attrs = m.groups()
        conditions = []
        if ident:
            conditions.append(f"@id='{ident[1:]}'")
        for cls in filter(None, classes.split(".")):
            conditions.append(f"contains(concat(' ', normalize-space(@class), ' '), ' {cls} ')")
        for name, value in re.findall(r"\[([\w-]+)=([^\]]*)\]", attrs):
            conditions.append(f"@{name}='{value.strip(chr(34))}'")
        steps.append((tag or "*") + "".join(f"[{c}]" for c in conditions))
    return ".//" + "//".join(steps)


def text(element: HtmlElement) -> str:
    return " ".join(element.text_content().split())


def cells(row: HtmlElement) -> list[str]:
    return [text(td) for td in row.xpath("./td")]
