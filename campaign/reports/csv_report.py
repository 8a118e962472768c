"""The report CSV: one row per input row, the columns docs/contract.md names and those that take it
back to the CRM (`sheet_row`, `sent_at`, delivery, the import's note, `--include`d original
columns), and how each cell is written.

Two forms. The default is for programs: UTF-8, `\\n`, values as stored, except that a text cell
that a spreadsheet would run as a formula (it starts with = + - @, a tab or a carriage return, as
OWASP lists them) gets a leading `'`. A cell that is only a sign, digits and phone punctuation
(`+1 206 555 0100`, `-12`) is left alone: nothing in it can be a formula, and the E.164 `phone`
column stays `+` and digits for programs. `--excel` is for Excel: a byte order mark so that Excel
reads UTF-8, `\\r\\n`, the same neutralising, and every number-like text (phones, ids with leading
zeros, dates) written as `="..."` so that Excel keeps it as text: `+12065550100` never becomes
1.21E+10.

Pure: rows in, text rows out; the command streams them to a file or stdout.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from campaign.errors import UserError
from campaign.importing import cells as stored_cells
from campaign.message import normalize_column_name

# The contract's columns first, in its spelling (docs/contract.md), then `file` (which import the
# row came from).
SPEC_COLUMNS = (
    "row",
    "raw_phone",
    "phone",
    "country",
    "state",
    "reason",
    "parts",
    "encoding",
    "message_id",
    "attempts",
)
COLUMNS = (
    *SPEC_COLUMNS,
    "file",
    "sheet_row",  # the row's number in a spreadsheet: the header is row 1, so row + 1
    "sent_at",  # when the API accepted the message, UTC
    "delivery",  # delivered / undelivered / empty (awaiting, or never sent)
    "delivery_reason",
    "charged",  # USD, from the delivery events
    "note",  # how the number was found, when that needs saying
)
_NUMBER_COLUMNS = frozenset({"row", "sheet_row", "parts", "attempts", "charged"})
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A sign, then only digits and phone punctuation: a number, never a formula.
_SIGNED_NUMBER = re.compile(r"[+-][0-9 ().\-/]*")
# Text Excel would turn into a number or a date: write it as ="..." in the --excel form.
_NUMBER_LIKE = re.compile(r"[+\-]?[0-9][0-9 ().,:/\-eE]*")
INCLUDE_PREFIX = "original:"  # an included column whose name is one of the report's own


class IncludeError(UserError):
    """`--include` names a column no import of the campaign has."""


def neutralize(text: str) -> str:
    """A text cell as a spreadsheet may safely open it (OWASP: CSV injection)."""
    if text.startswith(_FORMULA_START) and not _SIGNED_NUMBER.fullmatch(text):
        return "'" + text
    return text


def excel_text(text: str) -> str:
    """A text cell for --excel: neutralized, and kept as text when Excel would convert it."""
    if _NUMBER_LIKE.fullmatch(text):
        return f'="{text}"'
    return neutralize(text)


@dataclass(frozen=True)
class Included:
    """Original columns to append: their header in the report, and for each import the position
    of the column in its stored cells (None: that import has no such column)."""

    headers: tuple[str, ...]
    positions: dict[int, tuple[int | None, ...]]


def choose_included(spec: str | None, imports: Mapping[int, Sequence[str]]) -> Included | None:
    """`--include email,crm_id` (matched like headers: case and surrounding spaces ignored) or
    `--include all` (every column of every import, in order of first appearance)."""
    if spec is None:
        return None
    if spec.strip().lower() == "all":
        wanted = list(dict.fromkeys(name for names in imports.values() for name in names))
    else:
        wanted = [name.strip() for name in spec.split(",") if name.strip()]
        if not wanted:
            raise IncludeError("--include: name the columns, e.g. --include email,crm_id or all")
    headers: list[str] = []
    columns: list[list[int | None]] = [[] for _ in imports]
    for name in wanted:
        found = [_position(name, names) for names in imports.values()]
        if all(p is None for p in found):
            known = sorted({n for names in imports.values() for n in names})
            raise IncludeError(
                f"--include {name!r}: no import of this campaign has that column "
                f"(columns: {', '.join(repr(n) for n in known[:30]) or 'none'})"
            )
        spelled = next(
            names[p] for names, p in zip(imports.values(), found, strict=True) if p is not None
        )
        clash = normalize_column_name(spelled) in {normalize_column_name(c) for c in COLUMNS}
        headers.append(INCLUDE_PREFIX + spelled if clash else spelled)
        for slot, position in zip(columns, found, strict=True):
            slot.append(position)
    return Included(
        tuple(headers), {iid: tuple(cols) for iid, cols in zip(imports, columns, strict=True)}
    )


def _position(name: str, names: Sequence[str]) -> int | None:
    if name in names:
        return names.index(name)
    key = normalize_column_name(name)
    matches = [i for i, n in enumerate(names) if normalize_column_name(n) == key]
    return matches[0] if matches else None


def _when(value: datetime | None, excel: bool) -> str:
    if value is None:
        return ""
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC).replace(microsecond=0)
    # Excel reads "2026-12-03 10:15:00" as a date and time; programs want ISO 8601 with its zone.
    return moment.strftime("%Y-%m-%d %H:%M:%S" if excel else "%Y-%m-%dT%H:%M:%SZ")


def _dollars(value: float | None) -> str:
    """0.00847, not 0.008470000000000001: a float sum's noise dropped (micro-dollars kept)."""
    if value is None:
        return ""
    return format(round(value, 6), "f").rstrip("0").rstrip(".") or "0"


def report_lines(
    rows: Iterable[Mapping[str, Any]], included: Included | None, excel: bool
) -> Iterator[list[Any]]:
    """The header, then one list of cells per recipient, each written by the form's rules."""
    yield [*COLUMNS, *(included.headers if included else ())]
    text = excel_text if excel else neutralize
    for r in rows:
        values: dict[str, Any] = {
            "row": r["row"],
            "raw_phone": r["raw_phone"],
            "phone": r["phone"] or "",
            "country": r["country"] or "",
            "state": r["state"],
            "reason": r["reason"] or "",
            "parts": r["parts"] if r["parts"] is not None else "",
            "encoding": r["encoding"] or "",
            "message_id": r["message_id"] or "",
            "attempts": r["attempts"],
            "file": r["filename"],
            "sheet_row": r["row"] + 1,
            "sent_at": _when(r["sent_at"], excel),
            "delivery": r["delivery"] or "",
            "delivery_reason": r["delivery_reason"] or "",
            "charged": _dollars(r["charged"]),
            "note": r["note"] or "",
        }
        line = [
            v if name in _NUMBER_COLUMNS or name == "sent_at" or v == "" else text(str(v))
            for name, v in values.items()
        ]
        if included is not None:
            found = stored_cells.decode(r["cells"])
            for position in included.positions.get(r["import_id"], ()):
                cell = found[position] if position is not None and position < len(found) else ""
                line.append(text(cell) if cell else "")
        yield line


_FREE_TEXT = frozenset({"raw_phone", "reason", "file", "delivery_reason", "note"})


class TextSink(Protocol):
    def write(self, text: str, /) -> int: ...


def write_report(
    fh: TextSink, rows: Iterable[Mapping[str, Any]], included: Included | None, excel: bool
) -> int:
    """Write the report to `fh` (opened with newline=""); returns the number of recipients."""
    if excel:
        fh.write("\ufeff")
    terminator = "\r\n" if excel else "\n"
    writer = csv.writer(fh, lineterminator=terminator)
    # Python's csv module quotes a field only for the characters of its own line terminator, so
    # with "\n" a bare carriage return in a cell (a CRM's note) would be written unquoted and
    # split the row for most readers: such rows are written with every field quoted.
    quoted = csv.writer(fh, lineterminator=terminator, quoting=csv.QUOTE_ALL)
    lines = report_lines(rows, included, excel)
    header = next(lines)
    writer.writerow(header)
    # The columns that can hold text from the user's file (the others are the tool's own).
    texts = [i for i, name in enumerate(header) if i >= len(COLUMNS) or name in _FREE_TEXT]
    n = 0
    for line in lines:
        if not excel and any("\r" in str(line[i]) for i in texts):
            quoted.writerow(line)
        else:
            writer.writerow(line)
        n += 1
    return n
