"""CSV -> normalized, validated ledger rows.

One pass over the bytes first (hash for "already imported", encoding check, row estimate for the
progress bar), then pandas reads the file in chunks with every cell as text, so memory stays flat and
`+44...` or `0770...` survive. Each chunk is normalized, rendered and counted (in worker processes
when the file is large), then de-duplicated and written in the caller's order. The whole import is a
single transaction: an error or Ctrl-C anywhere leaves the ledger as it was.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import multiprocessing
import os
import re
import warnings
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from campaign.audience.gate import campaign_policy
from campaign.domain import Campaign, ImportRecord, RecipientState
from campaign.errors import UserError
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
from campaign.ledger import Ledger
from campaign.message import (
    Template,
    normalize_column_name,
)
from campaign.phones.normalize import Normalizer

CHUNK_ROWS = 50_000
# The start of the file, for the delimiter sniffer and the byte-order-mark / binary checks.
HEAD_BYTES = 65_536
# Below this many rows a process pool costs more than it saves.
PARALLEL_MIN_ROWS = 100_000
DELIMITERS = ",;\t|"
PHONE_COLUMN_NAMES = (
    "phone",
    "phone_number",
    "phonenumber",
    "mobile",
    "mobile_number",
    "mobile_phone",
    "cell",
    "cell_phone",
    "cellphone",
    "msisdn",
    "destination_phone_number",
    "destination",
    "number",
    "tel",
    "telephone",
    "to",
)
COUNTRY_COLUMN_NAMES = ("country", "country_code", "iso_country", "region")


class ImportFailed(UserError):
    """The file cannot be imported; nothing was written. The message is one line."""


@dataclass(frozen=True)
class ImportOptions:
    phone_column: str | None = None
    country_column: str | None = None
    timezone_column: str | None = None  # IANA zone per row; wins over the number's
    default_region: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    allow_non_mobile: bool = False
    workers: int | None = None  # None: decide from the file size and the machine


@dataclass
class ImportSummary:
    record: ImportRecord | None
    already_imported: ImportRecord | None = None
    encoding: str = ""
    delimiter: str = ""
    invalid_reasons: Counter[str] = field(default_factory=Counter)
    suppressed: int = 0  # on the do-not-send list (not counted in the record's `accepted`)

    @property
    def skipped(self) -> bool:
        return self.already_imported is not None


@dataclass(frozen=True)
class FileFacts:
    sha256: str
    encoding: str
    delimiter: str
    size: int
    lines: int


def _normalize_header(name: str) -> str:
    return "_".join(normalize_column_name(name).replace("-", " ").split())


def inspect_file(path: Path, encoding: str | None, delimiter: str | None) -> FileFacts:
    """Hash the file, settle its encoding and delimiter, count its lines.

    The encoding is checked over the whole file here, before anything is written: a stray byte
    on line 900,000 is reported with its line, not discovered halfway through the import.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImportFailed(f"cannot read {path}: {exc.strerror}") from None
    if size == 0:
        raise ImportFailed(f"{path} is empty: expected a header row and at least one data row")
    if encoding is not None:
        encoding = _check_encoding_name(encoding)
    digest = hashlib.sha256()
    lines = 0
    head = b""
    # Checked in this pass: the encoding asked for, or UTF-8 (the first guess).
    checker = _DecodeCheck(encoding or "utf-8")
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
            if len(head) < HEAD_BYTES:
                head += block[: HEAD_BYTES - len(head)]
            checker.feed(block, lines)
            lines += block.count(b"\n")
    checker.finish(lines)
    _refuse_binary(path, head, encoding)
    if encoding is None:
        encoding = _detect_encoding(path, head, checker)
    elif checker.error is not None:
        raise ImportFailed(
            f"{path} is not valid {encoding}: {checker.error}; pass the right --encoding "
            "(utf-8, cp1252 or latin-1 are the usual ones)"
        )
    text = head.decode(encoding, errors="ignore").lstrip("\ufeff")
    if delimiter is None:
        delimiter = _sniff_delimiter(text)
    elif delimiter in ("\\t", "tab", "TAB"):
        delimiter = "\t"
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise ImportFailed(
            f"--delimiter must be one character other than a quote or a line break, "
            f"not {delimiter!r}"
        )
    return FileFacts(digest.hexdigest(), encoding, delimiter, size, lines)


def _check_encoding_name(encoding: str) -> str:
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise ImportFailed(f"unknown encoding {encoding!r} (try utf-8, cp1252 or latin-1)")
    return encoding


class _DecodeCheck:
    """Feeds a file's blocks to an incremental decoder; remembers where the first bad byte is."""

    def __init__(self, encoding: str) -> None:
        self._decoder = codecs.getincrementaldecoder(encoding)()
        self._offset = 0
        self.error: str | None = None

    def feed(self, block: bytes, lines_before: int, final: bool = False) -> None:
        if self.error is not None:
            return
        try:
            self._decoder.decode(block, final)
        except UnicodeDecodeError as exc:
            # exc.object is the decoder's held-back bytes followed by this block.
            inside = exc.start - (len(exc.object) - len(block))
            line = lines_before + block[: max(inside, 0)].count(b"\n") + 1
            self.error = f"byte {self._offset + inside} (line {line}) cannot be decoded"
        self._offset += len(block)

    def finish(self, lines: int) -> None:
        self.feed(b"", lines, final=True)


def _first_decode_error(path: Path, encoding: str) -> str | None:
    checker = _DecodeCheck(encoding)
    lines = 0
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            checker.feed(block, lines)
            if checker.error is not None:
                return checker.error
            lines += block.count(b"\n")
    checker.finish(lines)
    return checker.error


def _detect_encoding(path: Path, head: bytes, utf8: _DecodeCheck) -> str:
    if head.startswith(codecs.BOM_UTF8):
        if utf8.error is not None:
            raise ImportFailed(
                f"{path} starts like UTF-8 (byte order mark) but {utf8.error}; "
                "pass the right --encoding"
            )
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        problem = _first_decode_error(path, "utf-16")
        if problem is not None:
            raise ImportFailed(
                f"{path} starts like UTF-16 (byte order mark) but {problem}; "
                "pass the right --encoding"
            )
        return "utf-16"
    if utf8.error is None:
        return "utf-8"
    # Excel on Windows writes cp1252: latin-1 plus curly quotes, dashes and the euro sign. The
    # five bytes cp1252 leaves undefined mean it is not cp1252; latin-1 decodes anything.
    return "cp1252" if _first_decode_error(path, "cp1252") is None else "latin-1"


def _refuse_binary(path: Path, head: bytes, encoding: str | None) -> None:
    """A workbook or other binary file is not a CSV: say so instead of reading garbage."""
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFailed(
            f"{path} is a spreadsheet workbook or an archive, not a CSV: "
            "save it as 'CSV UTF-8' first"
        )
    if (
        encoding is None
        and b"\x00" in head
        and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    ):
        raise ImportFailed(
            f"{path} contains NUL bytes: not a text CSV, or UTF-16 without a byte order mark "
            "(then pass --encoding utf-16-le or utf-16-be)"
        )


def _sniff_delimiter(text: str) -> str:
    sample = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        # A one-column file has no delimiter to find; count in the header as a fallback.
        header = sample.split("\n", 1)[0]
        counts = {d: header.count(d) for d in DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


def _pick_column(
    path: Path,
    headers: dict[str, str],
    wanted: str | None,
    candidates: Sequence[str],
    option: str,
    delimiter: str,
) -> str | None:
    """The real header name for a column, matched case-insensitively, ignoring spaces around it:
    `wanted` when the user named one (an error if it is missing), else the first candidate found."""
    if wanted is not None:
        key = _normalize_header(wanted)
        if key not in headers:
            raise _column_error(
                path, headers, delimiter, f"{option} {wanted!r}: {path.name} has no such column"
            )
        return headers[key]
    for candidate in candidates:
        if candidate in headers:
            return headers[candidate]
    return None


def _column_error(
    path: Path, headers: dict[str, str], delimiter: str, problem: str, advice: str = ""
) -> ImportFailed:
    """`problem` with the file's columns, or, when the file came out as one column that holds
    another delimiter, what is really wrong: the delimiter."""
    names = list(headers.values())
    if len(names) == 1:
        others = [d for d in DELIMITERS if d != delimiter and d in names[0]]
        if others:
            return ImportFailed(
                f"{path.name} read with delimiter {delimiter!r} has one column, "
                f"{names[0]!r}: pass --delimiter {others[0]!r}"
            )
    shown = ", ".join(repr(n) for n in names[:20])
    if len(names) > 20:
        shown += f", ... ({len(names)} in all)"
    return ImportFailed(f"{problem} (columns: {shown}){advice}")


# -- the import ---------------------------------------------------------------------------------


def import_file(
    ledger: Ledger,
    campaign: Campaign,
    path: Path,
    options: ImportOptions,
    *,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> ImportSummary:
    work = ChunkWork(
        campaign.template,
        campaign.gsm_safe,
        options.default_region.strip().upper() if options.default_region else None,
        options.allow_non_mobile,
        campaign_policy(campaign).spec,
    )
    try:
        Normalizer(work.default_region)  # an unknown region fails here, not in a worker
    except ValueError:
        raise ImportFailed(
            f"--default-region {options.default_region!r} is not a known country code "
            "(ISO alpha-2, e.g. US, GB, DE)"
        ) from None
    facts = inspect_file(path, options.encoding, options.delimiter)
    previous = ledger.find_import(campaign.id, facts.sha256)
    if previous is not None:
        return ImportSummary(None, previous, facts.encoding, facts.delimiter)
    if on_total:
        on_total(max(facts.lines - 1, 0))

    template = Template.parse(campaign.template)
    reader = _read_chunks(path, facts)
    first = next(reader, None)
    if first is None:
        raise ImportFailed(f"{path} has no header row")
    headers = {_normalize_header(str(c)): str(c) for c in first.columns}
    if len(first) == 0:
        raise ImportFailed(f"{path} has a header but no data rows")
    phone_col = _pick_column(
        path, headers, options.phone_column, PHONE_COLUMN_NAMES, "--phone-column", facts.delimiter
    )
    if phone_col is None:
        raise _column_error(
            path,
            headers,
            facts.delimiter,
            f"no phone column in {path.name}",
            "; name it with --phone-column",
        )
    country_col = (
        _pick_column(
            path,
            headers,
            options.country_column,
            COUNTRY_COLUMN_NAMES,
            "--country-column",
            facts.delimiter,
        )
        if options.country_column
        else None
    )
    tz_col = (
        _pick_column(
            path, headers, options.timezone_column, (), "--timezone-column", facts.delimiter
        )
        if options.timezone_column
        else None
    )
    merge_cols: dict[str, str] = {}
    for column in template.columns:
        key = _normalize_header(column)
        if key not in headers:
            raise _column_error(
                path,
                headers,
                facts.delimiter,
                f"the message uses {{{column}}} but {path.name} has no column {column!r}",
            )
        merge_cols[column] = headers[key]

    seen = SeenNumbers(ledger.known_phones(campaign.id))
    listed = ledger.suppressed_phones()  # the do-not-send list: number -> reason
    summary = ImportSummary(None, None, facts.encoding, facts.delimiter)
    counters = {"accepted": 0, "duplicates": 0, "invalid": 0}
    # (character, source) -> [rows, extra parts], over the rows that end up pending.
    ucs2_totals: dict[tuple[str, str], list[int]] = {}

    def chunks() -> Iterator[pd.DataFrame]:
        yield first
        yield from reader

    def payloads() -> Iterator[tuple[Any, ...]]:
        for frame in chunks():
            yield (
                int(frame.index[0]) + 1 if len(frame) else 1,  # 1-based data row number
                frame[phone_col].tolist(),
                frame[country_col].tolist() if country_col else None,
                {name: frame[real].tolist() for name, real in merge_cols.items()},
                _blank_rows(frame),
                frame[tz_col].tolist() if tz_col else None,
            )

    executor = _executor_for(facts, options, work)

    def results() -> Iterator[tuple[int, list[RowResult], RowFindings]]:
        if executor is None:
            _worker_init(work)
            for args in payloads():
                yield len(args[1]), *process_chunk(*args)
            return
        # Keep the workers busy while this process de-duplicates and writes.
        pending: deque[tuple[int, Any]] = deque()
        depth = 2 * (options.workers or os.cpu_count() or 2)
        for args in payloads():
            pending.append((len(args[1]), executor.submit(process_chunk, *args)))
            if len(pending) >= depth:
                n, future = pending.popleft()
                yield n, *future.result()
        while pending:
            n, future = pending.popleft()
            yield n, *future.result()

    def batches() -> Iterator[list[RowResult]]:
        written = 0
        for n, rows, ucs2 in results():
            _decide_duplicates(rows, seen, counters, summary.invalid_reasons, ucs2, ucs2_totals)
            suppressed = mark_suppressed(rows, listed)
            counters["accepted"] -= suppressed
            summary.suppressed += suppressed
            if progress:
                progress(n)
            written += len(rows)
            yield rows
        if not written:  # only blank lines under the header; raising here rolls back
            raise ImportFailed(f"{path} has a header but no data rows")

    def finish() -> tuple[int, int, int, list[dict[str, Any]]]:
        ucs2_rows = ucs2_totals_rows(ucs2_totals)
        return counters["accepted"], counters["duplicates"], counters["invalid"], ucs2_rows

    try:
        summary.record = ledger.write_import(
            campaign.id,
            filename=str(path),
            sha256=facts.sha256,
            phone_column=phone_col,
            columns=list(headers.values()),
            row_columns=LEDGER_COLUMNS,
            batches=batches(),
            finish=finish,
        )
    except _ReadError as exc:  # raised while rows were being written: all of them rolled back
        raise ImportFailed(f"{exc}; nothing was imported") from None
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)
    return summary


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _executor_for(facts: FileFacts, options: ImportOptions, work: ChunkWork) -> Executor | None:
    workers = options.workers
    if workers is None:
        workers = (os.cpu_count() or 1) if facts.lines >= PARALLEL_MIN_ROWS else 0
    if workers <= 0:
        return None
    # Fresh worker processes, not forks: they import only campaign.importing.rows (no pandas, no
    # SQLAlchemy) and share nothing with this process's growing memory.
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_init,
        initargs=(work,),
    )


class _ReadError(ImportFailed):
    """pandas could not read part of the file."""


_FIELD_COUNT = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_OPEN_QUOTE = re.compile(r"EOF inside string starting at row (\d+)")


def _parser_problem(path: Path, exc: Exception) -> str:
    """pandas' tokenizer error as a line a user can act on. Its "line" counts records (the header
    is line 1, a quoted field with line breaks is one line), so line - 1 is the data row number
    that `campaign report` uses."""
    text = _one_line(exc)
    found = _FIELD_COUNT.search(text)
    if found:
        expected, line, saw = (int(g) for g in found.groups())
        return (
            f"{path}: malformed CSV: data row {line - 1} has {saw} fields but the header has "
            f"{expected} (quote a field that contains the delimiter)"
        )
    found = _OPEN_QUOTE.search(text)
    if found:
        return (
            f"{path}: malformed CSV: the quoted field opened in data row {found.group(1)} is "
            "never closed"
        )
    return f"{path}: malformed CSV: {text.removeprefix('Error tokenizing data. C error: ')}"


def _read_chunks(path: Path, facts: FileFacts) -> Iterator[pd.DataFrame]:
    """The file as DataFrames of CHUNK_ROWS rows, every cell text. Read errors, wherever in the
    file they happen, arrive as _ReadError with one clear line."""
    try:
        reader = _quietly(
            lambda: pd.read_csv(
                path,
                sep=facts.delimiter,
                encoding=facts.encoding,
                dtype=str,  # every cell is text: leading zeros and '+' survive, no 4155552671.0
                keep_default_na=False,
                na_filter=False,
                skip_blank_lines=False,
                # A trailing delimiter on every data line must not make the first column the
                # index (that shifts every column by one): the header says what the columns are.
                index_col=False,
                chunksize=CHUNK_ROWS,
                engine="c",
                quotechar='"',
                doublequote=True,
            )
        )
        with reader:
            while (frame := _quietly(lambda: next(reader, None))) is not None:
                yield frame
    except UnicodeDecodeError as exc:
        # inspect_file checked the whole file already; this is a codec pandas reads differently.
        raise _ReadError(
            f"{path} is not valid {facts.encoding} (byte {exc.start} of a block); "
            "pass the right --encoding"
        ) from None
    except pd.errors.EmptyDataError:
        raise _ReadError(f"{path} has no header row") from None
    except pd.errors.ParserError as exc:
        raise _ReadError(_parser_problem(path, exc)) from None


def _quietly(call: Callable[[], Any]) -> Any:
    # pandas warns when index_col=False drops a trailing empty field; that is the point of it.
    # Scoped to one call, never across a `yield`, so the caller's warning filters stay intact.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.ParserWarning)
        return call()


class SeenNumbers:
    """Every E.164 number already in the campaign, as one sorted int64 array: 8 bytes a number
    where a Python set of ints takes about 70, so a million-row import stays well inside its
    memory budget. Each chunk is checked and merged in one vectorized step."""

    def __init__(self, phones: Iterator[str] | set[str]) -> None:
        self._sorted = np.unique(np.fromiter((int(p[1:]) for p in phones), dtype=np.int64))

    def first_seen(self, numbers: list[int]) -> list[bool]:
        """For each number, in order: True when neither known nor earlier in `numbers`
        (and remember it), False for a duplicate."""
        if not numbers:
            return []
        keys = np.asarray(numbers, dtype=np.int64)
        at = np.searchsorted(self._sorted, keys)
        known = np.zeros(len(keys), dtype=bool)
        inside = at < len(self._sorted)
        known[inside] = self._sorted[at[inside]] == keys[inside]
        first = np.zeros(len(keys), dtype=bool)
        first[np.unique(keys, return_index=True)[1]] = True  # first occurrence in this chunk
        new = first & ~known
        if new.any():
            self._sorted = np.sort(np.concatenate((self._sorted, keys[new])), kind="stable")
        return new.tolist()

    def __len__(self) -> int:
        return len(self._sorted)


def _decide_duplicates(
    rows: list[RowResult],
    seen: SeenNumbers,
    counters: dict[str, int],
    reasons: Counter[str],
    findings: RowFindings,
    ucs2_totals: dict[tuple[str, str], list[int]],
) -> None:
    """`pending` or `duplicate` for each row that passed its checks, in file order (in place)."""
    pending = RecipientState.PENDING.value
    duplicate = RecipientState.DUPLICATE.value
    candidates = [i for i, row in enumerate(rows) if row[5] is None]
    for row in rows:
        if row[5] is not None:
            counters["invalid"] += 1
            reasons[_reason_kind(row[6])] += 1
    verdicts = seen.first_seen([int(rows[i][2][1:]) for i in candidates])  # type: ignore[index]
    for i, is_new in zip(candidates, verdicts, strict=True):
        row = rows[i]
        if not is_new:
            rows[i] = (
                *row[:5],
                duplicate,
                "same number as an earlier row of this campaign",
                *row[7:],
            )
            counters["duplicates"] += 1
            continue
        rows[i] = (*row[:5], pending, *row[6:])
        counters["accepted"] += 1
        for char, source, extra in findings.get(i, ()):
            slot = ucs2_totals.setdefault((char, source), [0, 0])
            slot[0] += 1
            slot[1] += extra


def _blank_rows(frame: pd.DataFrame) -> list[bool] | None:
    if frame.shape[1] == 0:
        return None
    mask = (frame == "").all(axis=1)
    return mask.tolist() if mask.any() else None


def _reason_kind(reason: str | None) -> str:
    """Group reasons for the summary: 'invalid number for GB' and '... for US' stay apart, but
    reasons quoting the raw value are cut at the colon."""
    if not reason:
        return "unknown"
    return reason.split(":", 1)[0]


# -- a list of numbers (`campaign suppress add FILE`) ------------------------------------------------

_BARE_NUMBER = re.compile(r"[+\d\s().\-]*\d[+\d\s().\-]*")


def read_phone_cells(path: Path, phone_column: str | None = None) -> tuple[list[int], list[str]]:
    """The phone column of a file of numbers, read as an import reads it (encoding, delimiter,
    the column found by name): (data row numbers, cells). A file of bare numbers, one per line
    with no header, is read whole: its first line is a number, not a column name."""
    facts = inspect_file(path, None, None)
    reader = _read_chunks(path, facts)
    first = next(reader, None)
    if first is None:
        raise ImportFailed(f"{path} has no rows")
    headers = {_normalize_header(str(c)): str(c) for c in first.columns}
    column = _pick_column(
        path, headers, phone_column, PHONE_COLUMN_NAMES, "--phone-column", facts.delimiter
    )
    rows: list[int] = []
    cells: list[str] = []
    if column is None:
        only = str(first.columns[0])
        if len(headers) != 1 or not _BARE_NUMBER.fullmatch(only):
            raise _column_error(
                path,
                headers,
                facts.delimiter,
                f"no phone column in {path.name}",
                "; name it with --phone-column",
            )
        column, rows, cells = only, [1], [only]  # no header: the first line is row 1
    shift = len(rows)  # without a header every row is one further down
    for frame in (first, *reader):
        rows.extend(int(i) + 1 + shift for i in frame.index)
        cells.extend(frame[column].tolist())
    return rows, cells


__all__ = [
    "ImportFailed",
    "ImportOptions",
    "ImportSummary",
    "import_file",
    "inspect_file",
    "read_phone_cells",
]
