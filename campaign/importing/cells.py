"""Every cell of an input row, kept with its recipient (`recipients.cells`) so that the report can
give the CRM its own columns back (`report --include email,crm_id`).

A million rows are imported in seconds, so a row's cells are stored the cheapest way that reads
back exactly: joined by U+001F (the ASCII unit separator, which no CRM export puts in a cell), one
C-level join per row. A row that does hold U+001E or U+001F is stored as U+001E followed by a JSON
array instead. The header is kept once per import (imports.columns), in the same order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

UNIT = "\x1f"
RECORD = "\x1e"
# A chunk's cells while its rows are normalized elsewhere: UTF-8 bytes (one name such as Łukasz
# would make a str of the whole chunk two bytes a character), or one string per row.
Packed = bytes | list[str]


def encode_row(cells: Sequence[str]) -> str:
    if any(UNIT in c or RECORD in c for c in cells):
        return RECORD + json.dumps(list(cells), ensure_ascii=False)
    return UNIT.join(cells)


def pack(columns: Sequence[Sequence[str]], rows: int) -> Packed:
    """A chunk's rows, given column by column, as one UTF-8 text (rows joined by U+001E) when no
    cell holds a separator, else as one encoded string per row. One compact object per chunk
    keeps the chunks in flight light; `unpack` splits it when the chunk is written."""
    if not columns or rows == 0:
        return [""] * rows
    joined = RECORD.join(map(UNIT.join, zip(*columns, strict=True)))
    if joined.count(UNIT) == rows * (len(columns) - 1) and joined.count(RECORD) == rows - 1:
        return joined.encode("utf-8", "surrogatepass")
    return [encode_row(row) for row in zip(*columns, strict=True)]


def unpack(packed: Packed) -> list[str]:
    """One stored string per row of the chunk."""
    if isinstance(packed, bytes):
        return packed.decode("utf-8", "surrogatepass").split(RECORD)
    return packed


def decode(stored: str | None) -> list[str]:
    """A stored row back as its cells ([] when the import kept none)."""
    if stored is None:
        return []
    if stored.startswith(RECORD):
        cells: list[str] = json.loads(stored[1:])
        return cells
    return stored.split(UNIT)
