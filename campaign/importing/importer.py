"""CSV -> normalized, validated ledger rows.

The file is checked first (campaign.importing.files: hash, encoding, delimiter, header), its
columns chosen (campaign.importing.columns: the phone column, the country column, each message
field's column), then pandas reads it in chunks with every cell as text, so memory stays flat and
`+44...` or `0770...` survive. Each chunk is normalized, rendered and counted (in worker processes
when the file is large), then de-duplicated (campaign.importing.dedupe) and written in the file's
order, each row with its original cells. The whole import is a single transaction: an error or
Ctrl-C anywhere leaves the ledger as it was.
"""

from __future__ import annotations

import multiprocessing
import os
import re
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from campaign.audience.gate import campaign_policy
from campaign.domain import Campaign, ImportRecord
from campaign.importing import cells
from campaign.importing.columns import (
    ColumnError,
    Header,
    MergeColumns,
    PhoneChoice,
    choose_phone_column,
    merge_columns,
    named_column,
    parse_mappings,
)
from campaign.importing.dedupe import SeenNumbers, decide_duplicates
from campaign.importing.files import (
    HEAD_BYTES,
    MAX_COLUMNS,
    FileFacts,
    ImportFailed,
    ReadError,
    Source,
    inspect_file,
    open_source,
    read_chunks,
    read_header,
)
from campaign.importing.rows import (
    LEDGER_COLUMNS,
    ChunkWork,
    RowFindings,
    RowResult,
    _worker_init,
    mark_suppressed,
    process_chunk,
    ucs2_totals_rows,
)
from campaign.importing.workers import start_worker
from campaign.ledger import Ledger
from campaign.message import Template
from campaign.phones.normalize import Normalizer

# Rows per chunk. Chunks in flight (read, at a worker, waiting to be written) are most of the
# import's memory beyond its libraries: 25,000 rows keep a million-row import near 200 MB in this
# process, with each row's cells kept; 50,000 took 250 MB for no measurable gain in speed.
CHUNK_ROWS = 25_000
# A chunk holds at most about this many cells, so that a wide file does not take the memory of a
# long one: 25,000 rows of 4 columns, 1,250 rows of 80.
CHUNK_CELLS = 100_000
# Below this many rows a process pool costs more than it saves.
PARALLEL_MIN_ROWS = 100_000


@dataclass(frozen=True)
class ImportOptions:
    phone_column: Sequence[str] = ()  # the phone column, then per-row fallbacks, in order
    country_column: str | None = None
    timezone_column: str | None = None  # IANA zone per row; wins over the number's
    default_region: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    allow_non_mobile: bool = False
    workers: int | None = None  # None: decide from the file size and the machine
    phone_fallback: bool = False  # a row falls back to the other phone columns, best first
    mappings: Sequence[str] = ()  # --map FIELD=COLUMN


@dataclass
class ImportSummary:
    record: ImportRecord | None
    already_imported: ImportRecord | None = None
    encoding: str = ""
    delimiter: str = ""
    invalid_reasons: Counter[str] = field(default_factory=Counter)
    suppressed: int = 0  # on the do-not-send list (not counted in the record's `accepted`)
    phone_column: str = ""
    phone_fallbacks: tuple[str, ...] = ()
    phone_why: str = ""
    fell_back: int = 0  # rows whose number came from a fallback column
    split_cells: int = 0  # rows whose number is one of several in its cell
    warnings: list[str] = field(default_factory=list)  # one line each, for the user

    @property
    def skipped(self) -> bool:
        return self.already_imported is not None


@dataclass(frozen=True)
class _Columns:
    """The columns one import reads, as header positions."""

    header: Header
    phone: PhoneChoice
    country: int | None
    merge: MergeColumns
    timezone: int | None = None  # --timezone-column: a zone there wins over the number's


# -- the import ---------------------------------------------------------------------------------


def checked_region(default_region: str | None) -> str | None:
    """--default-region as the normalizer takes it; an unknown code fails here (before `create`
    makes the campaign, and not in a worker)."""
    region = default_region.strip().upper() if default_region else None
    try:
        Normalizer(region)
    except ValueError:
        raise ImportFailed(
            f"--default-region {default_region!r} is not a known country code "
            "(ISO alpha-2, e.g. US, GB, DE)"
        ) from None
    return region


def import_file(
    ledger: Ledger,
    campaign: Campaign,
    path: Path,
    options: ImportOptions,
    *,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import `path` (`-`: standard input) into `campaign`, all or nothing."""
    region = checked_region(options.default_region)
    with open_source(path) as source:
        return _import_source(ledger, campaign, source, options, region, progress, on_total)


def _import_source(
    ledger: Ledger,
    campaign: Campaign,
    source: Source,
    options: ImportOptions,
    region: str | None,
    progress: Callable[[int], None] | None,
    on_total: Callable[[int], None] | None,
) -> ImportSummary:
    facts = inspect_file(source, options.encoding, options.delimiter)
    summary = ImportSummary(None, None, facts.encoding_label, facts.delimiter)
    previous = ledger.find_import(campaign.id, facts.sha256)
    if previous is not None:
        summary.already_imported = previous
        return summary
    template = Template.parse(campaign.template)
    columns = _choose_columns(source, facts, template, options)
    summary.warnings.extend(_encoding_warnings(source, facts, options.encoding))
    summary.warnings.extend(
        f"the message's {{{name}}}: {source.label} has no column {name!r}, so every row gets "
        "the field's fallback"
        for name in columns.merge.missing_with_fallback
    )
    names = columns.header.names
    summary.phone_column = names[columns.phone.position]
    summary.phone_fallbacks = tuple(names[p] for p in columns.phone.fallbacks)
    summary.phone_why = columns.phone.why
    work = ChunkWork(
        campaign.template,
        campaign.gsm_safe,
        region,
        options.allow_non_mobile,
        phone_columns=(summary.phone_column, *summary.phone_fallbacks),
        window_policy=campaign_policy(campaign).spec,
    )
    if on_total:
        on_total(max(facts.lines - 1, 0))
    frames = _frames(source, facts, columns)
    rows = _Rows(ledger, campaign.id, summary, progress)
    with _executor(facts, options, work) as executor:
        batches = rows.batches(_results(frames, columns, executor, options), source.label)
        summary.record = _write(ledger, campaign.id, source, facts, columns, batches, rows.finish)
    return summary


def _choose_columns(
    source: Source, facts: FileFacts, template: Template, options: ImportOptions
) -> _Columns:
    header = Header(tuple(read_header(source, facts)), source.label)
    try:
        phone = choose_phone_column(header, options.phone_column, options.phone_fallback)
        country = named_column(header, options.country_column, "--country-column")
        merge = merge_columns(header, template, parse_mappings(options.mappings))
        timezone = named_column(header, options.timezone_column, "--timezone-column")
    except ColumnError as exc:
        raise ImportFailed(str(exc)) from None
    return _Columns(header, phone, country, merge, timezone)


def _encoding_warnings(source: Source, facts: FileFacts, forced: str | None) -> list[str]:
    """Never silent about encodings: lines read as Windows-1252 in a UTF-8 file, or UTF-8 lines
    read as the single-byte encoding the user forced (Renée would become RenÃ©e)."""
    if facts.cp1252_count:
        lines = ", ".join(str(n) for n in facts.cp1252_lines)
        more = (
            f" and {facts.cp1252_count - len(facts.cp1252_lines)} more"
            if (facts.cp1252_count > len(facts.cp1252_lines))
            else ""
        )
        return [
            f"{source.label} is UTF-8 except {facts.cp1252_count} line(s) in Windows-1252 "
            f"(line {lines}{more}): each line was decoded in its own encoding"
        ]
    if forced is not None and facts.utf8_lines:
        return [
            f"{facts.utf8_lines} line(s) of {source.label} are valid UTF-8 but were read as "
            f"{forced}: accented letters turn into pairs like 'Ã©'; leave out --encoding to "
            "decode each line as what it is"
        ]
    return []


def _chunk_rows(width: int) -> int:
    return min(CHUNK_ROWS, max(1_000, CHUNK_CELLS // max(width, 1)))


def _frames(source: Source, facts: FileFacts, columns: _Columns) -> Iterator[Any]:
    """The file's pandas chunks; the first one is read now, to fail early on a file with a header
    and no data rows."""
    width = len(columns.header.names)
    frames = read_chunks(source, facts, width, _chunk_rows(width))
    first = next(frames, None)
    if first is None or len(first) == 0:
        raise ImportFailed(f"{source.label} has a header but no data rows")

    def chunks() -> Iterator[Any]:
        yield first
        yield from frames

    return chunks()


class _Rows:
    """The rows of one import on their way to the ledger, chunk by chunk in the file's order:
    duplicates decided, listed numbers suppressed, notes counted, each row's cells attached; and
    the totals once every chunk is written."""

    def __init__(
        self,
        ledger: Ledger,
        campaign_id: int,
        summary: ImportSummary,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.seen = SeenNumbers(ledger.known_phones(campaign_id))
        self.listed = ledger.suppressed_phones()  # the do-not-send list: number -> reason
        self.counters = {"accepted": 0, "duplicates": 0, "invalid": 0}
        # (character, source) -> [rows, extra parts], over the rows that end up pending.
        self.ucs2_totals: dict[tuple[str, str], list[int]] = {}
        self.summary = summary
        self.progress = progress

    def batches(self, done: Iterator[_Done], label: str) -> Iterator[list[tuple[Any, ...]]]:
        written = 0
        for first_row, n, packed, rows, ucs2 in done:
            self._decide(rows, ucs2)
            if self.progress:
                self.progress(n)
            written += len(rows)
            yield _with_cells(rows, cells.unpack(packed), first_row)
        if not written:  # only blank lines under the header; raising here rolls back
            raise ImportFailed(f"{label} has a header but no data rows")

    def _decide(self, rows: list[RowResult], ucs2: RowFindings) -> None:
        summary = self.summary
        decide_duplicates(
            rows, self.seen, self.counters, summary.invalid_reasons, ucs2, self.ucs2_totals
        )
        suppressed = mark_suppressed(rows, self.listed)
        self.counters["accepted"] -= suppressed
        summary.suppressed += suppressed
        _count_notes(rows, summary)

    def finish(self) -> tuple[int, int, int, list[dict[str, Any]]]:
        ucs2_rows = ucs2_totals_rows(self.ucs2_totals)
        c = self.counters
        return c["accepted"], c["duplicates"], c["invalid"], ucs2_rows


def _with_cells(
    rows: list[RowResult], row_cells: list[Any], first_row: int
) -> list[tuple[Any, ...]]:
    """Each row with its original cells as one more column. In place: a second list of a chunk's
    tuples would be one more copy of the chunk."""
    widened = cast(list[tuple[Any, ...]], rows)
    for i, row in enumerate(rows):
        widened[i] = (*row, row_cells[row[0] - first_row])
    return widened


def _write(
    ledger: Ledger,
    campaign_id: int,
    source: Source,
    facts: FileFacts,
    columns: _Columns,
    batches: Iterator[list[tuple[Any, ...]]],
    finish: Callable[[], tuple[int, int, int, list[dict[str, Any]]]],
) -> ImportRecord:
    """Every row in one transaction."""
    try:
        return ledger.write_import(
            campaign_id,
            filename=source.recorded,
            sha256=facts.sha256,
            phone_column=columns.header.names[columns.phone.position][:200],  # String(200)
            columns=list(columns.header.names),
            row_columns=(*LEDGER_COLUMNS, "cells"),
            batches=batches,
            finish=finish,
        )
    except ReadError as exc:  # raised while rows were being written: all of them rolled back
        raise ImportFailed(f"{exc}; nothing was imported") from None


_Done = tuple[int, int, cells.Packed, list[RowResult], RowFindings]


def _results(
    frames: Iterator[Any], columns: _Columns, executor: Executor | None, options: ImportOptions
) -> Iterator[_Done]:
    """(first row, rows read, packed cells, ledger rows, UCS-2 findings) per chunk, in order."""

    def payloads() -> Iterator[tuple[int, int, cells.Packed, tuple[Any, ...]]]:
        for frame in frames:
            first_row = int(frame.index[0]) + 1 if len(frame) else 1  # 1-based data row number
            every = [frame[i].tolist() for i in range(frame.shape[1])]
            args = (
                first_row,
                every[columns.phone.position],
                every[columns.country] if columns.country is not None else None,
                {name: every[p] for name, p in columns.merge.positions.items()},
                _blank_rows(frame),
                [every[p] for p in columns.phone.fallbacks],
                every[columns.timezone] if columns.timezone is not None else None,
            )
            yield first_row, len(frame), cells.pack(every, len(frame)), args

    if executor is None:
        for first_row, n, packed, args in payloads():
            yield first_row, n, packed, *process_chunk(*args)
        return
    # Keep the workers busy while this process de-duplicates and writes.
    pending: deque[tuple[int, int, cells.Packed, Any]] = deque()
    depth = 2 * (options.workers or os.cpu_count() or 2)
    for first_row, n, packed, args in payloads():
        pending.append((first_row, n, packed, executor.submit(process_chunk, *args)))
        if len(pending) >= depth:
            first_row, n, packed, future = pending.popleft()
            yield first_row, n, packed, *future.result()
    while pending:
        first_row, n, packed, future = pending.popleft()
        yield first_row, n, packed, *future.result()


def _count_notes(rows: list[RowResult], summary: ImportSummary) -> None:
    for row in rows:
        note = row[9]  # LEDGER_COLUMNS[9] == "note"
        if note is not None:
            if note.startswith("phone from "):
                summary.fell_back += 1
            if "in the cell" in note:
                summary.split_cells += 1


@contextmanager
def _executor(
    facts: FileFacts, options: ImportOptions, work: ChunkWork
) -> Iterator[Executor | None]:
    """The worker processes of a large file (None: this process does the row work), shut down
    with the import, whatever ends it."""
    executor = _executor_for(facts, options, work)
    try:
        yield executor
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)


def _executor_for(facts: FileFacts, options: ImportOptions, work: ChunkWork) -> Executor | None:
    workers = options.workers
    if workers is None:
        workers = (os.cpu_count() or 1) if facts.lines >= PARALLEL_MIN_ROWS else 0
    if workers <= 0:
        _worker_init(work)  # this process does the row work itself
        return None
    # Fresh worker processes, not forks: they import only campaign.importing.rows (no pandas, no
    # SQLAlchemy) and share nothing with this process's growing memory. They die with it.
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=start_worker,
        initargs=(work, os.getpid()),
    )


def _blank_rows(frame: Any) -> list[bool] | None:
    if frame.shape[1] == 0:
        return None
    mask = (frame == "").all(axis=1)
    return mask.tolist() if mask.any() else None


# -- a list of numbers (`campaign suppress add FILE`) ----------------------------------------------

_BARE_NUMBER = re.compile(r"[+\d\s().\-]*\d[+\d\s().\-]*")


def read_phone_cells(
    path: Path,
    phone_column: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> tuple[list[int], list[str]]:
    """The phone column of a file of numbers, read as an import reads it (encoding, delimiter,
    the column chosen by name): (data row numbers, cells). A file of bare numbers, one per line
    with no header, is read whole: its first line is a number, not a column name."""
    with open_source(path) as source:
        facts = inspect_file(source, encoding, delimiter)
        header = Header(tuple(read_header(source, facts)), source.label)
        bare = (
            phone_column is None
            and len(header.names) == 1
            and _BARE_NUMBER.fullmatch(header.names[0]) is not None
        )
        rows: list[int] = []
        found: list[str] = []
        position = 0
        if bare:
            rows, found = [1], [header.names[0]]  # no header: the first line is row 1
        else:
            try:
                wanted = (phone_column,) if phone_column is not None else ()
                position = choose_phone_column(header, wanted, fallback=False).position
            except ColumnError as exc:
                raise ImportFailed(str(exc)) from None
        shift = len(rows)  # without a header every row is one further down
        width = len(header.names)
        for frame in read_chunks(source, facts, width, _chunk_rows(width)):
            rows.extend(int(i) + 1 + shift for i in frame.index)
            found.extend(frame[position].tolist())
    return rows, found


__all__ = [
    "HEAD_BYTES",
    "MAX_COLUMNS",
    "ImportFailed",
    "ImportOptions",
    "ImportSummary",
    "import_file",
    "inspect_file",
    "read_phone_cells",
]
