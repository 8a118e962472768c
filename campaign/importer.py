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
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from campaign.errors import UserError
from campaign.ledger import Campaign, ImportRecord, Ledger
from campaign.message import (
    UCS2,
    MissingMergeValue,
    Template,
    count_body,
    gsm_safe,
    normalize_column_name,
    ucs2_characters,
)
from campaign.models import RecipientState
from campaign.phones import Normalizer

CHUNK_ROWS = 50_000
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
    """Hash the file, settle its encoding and delimiter, count its lines (one pass over the bytes)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImportFailed(f"cannot read {path}: {exc.strerror}") from None
    if size == 0:
        raise ImportFailed(f"{path} is empty: expected a header row and at least one data row")
    digest = hashlib.sha256()
    lines = 0
    utf8 = codecs.getincrementaldecoder("utf-8")()
    utf8_ok = True
    head = b""
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
            lines += block.count(b"\n")
            if len(head) < 65536:
                head += block[: 65536 - len(head)]
            if utf8_ok and encoding is None:
                try:
                    utf8.decode(block)
                except UnicodeDecodeError:
                    utf8_ok = False
    if encoding is None:
        if head.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"
        elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            encoding = "utf-16"
        elif utf8_ok:
            encoding = "utf-8"
        else:
            # Excel on Windows writes cp1252; it is latin-1 plus curly quotes, dashes and the euro
            # sign. Bytes cp1252 leaves undefined fall back to latin-1, which decodes anything.
            try:
                head.decode("cp1252")
                encoding = "cp1252"
            except UnicodeDecodeError:
                encoding = "latin-1"
    else:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ImportFailed(
                f"unknown encoding {encoding!r} (try utf-8, cp1252 or latin-1)"
            ) from None
    try:
        text = head.decode(encoding, errors="ignore" if len(head) == 65536 else "strict")
    except UnicodeDecodeError as exc:
        raise ImportFailed(
            f"{path} is not valid {encoding} (byte {exc.start}); pass the right --encoding"
        ) from None
    text = text.lstrip("\ufeff")
    if delimiter is None:
        delimiter = _sniff_delimiter(text)
    elif delimiter in ("\\t", "tab", "TAB"):
        delimiter = "\t"
    if len(delimiter) != 1:
        raise ImportFailed(f"--delimiter must be one character, not {delimiter!r}")
    return FileFacts(digest.hexdigest(), encoding, delimiter, size, lines)


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
    headers: dict[str, str], wanted: str | None, candidates: Sequence[str], what: str, option: str
) -> str | None:
    """The real header name for a column, matched case-insensitively, ignoring spaces around it."""
    if wanted is not None:
        key = _normalize_header(wanted)
        if key not in headers:
            raise ImportFailed(
                f"no column {wanted!r} in the file (columns: {', '.join(headers.values())})"
            )
        return headers[key]
    for candidate in candidates:
        if candidate in headers:
            return headers[candidate]
    if what == "phone":
        raise ImportFailed(
            f"no phone column found (columns: {', '.join(headers.values())}); name it with {option}"
        )
    return None


# -- the per-chunk work (runs in worker processes for large files) --------------------------------


@dataclass(frozen=True)
class ChunkWork:
    template: str
    gsm_safe: bool
    default_region: str | None
    allow_non_mobile: bool


_worker_state: dict[str, Any] = {}


def _worker_init(work: ChunkWork) -> None:
    _worker_state["work"] = work
    _worker_state["template"] = Template.parse(work.template)
    _worker_state["normalizer"] = Normalizer(
        work.default_region, allow_non_mobile=work.allow_non_mobile
    )


# (e164, country, state-or-None, reason, parts, encoding)
RowResult = tuple[str | None, str | None, str | None, str | None, int | None, str | None]


def process_chunk(
    phones: Sequence[Any], regions: Sequence[Any] | None, fields: dict[str, Sequence[Any]]
) -> tuple[list[RowResult], list[tuple[str, str, int]]]:
    """Normalize, render and count one chunk. Returns per-row results and UCS-2 findings
    (character, source, extra parts) for the rows that came out UCS-2."""
    work: ChunkWork = _worker_state["work"]
    template: Template = _worker_state["template"]
    normalizer: Normalizer = _worker_state["normalizer"]
    phone_results = normalizer.normalize_many(
        phones, [r if r else None for r in regions] if regions is not None else None
    )
    columns = list(fields)
    static_count = None
    if template.is_static:
        body = template.render({})
        static_count = count_body(gsm_safe(body) if work.gsm_safe else body)
    out: list[RowResult] = []
    ucs2: list[tuple[str, str, int]] = []
    invalid = RecipientState.INVALID.value
    for i, result in enumerate(phone_results):
        if result.e164 is None:
            out.append((None, result.country, invalid, result.reason, None, None))
            continue
        if static_count is not None:
            out.append(
                (result.e164, result.country, None, None, static_count.parts, static_count.encoding)
            )
            continue
        values = {c: fields[c][i] for c in columns}
        try:
            body = template.render(values)
        except MissingMergeValue as exc:
            out.append(
                (
                    result.e164,
                    result.country,
                    invalid,
                    f"empty merge field '{exc.column}' and no fallback",
                    None,
                    None,
                )
            )
            continue
        if work.gsm_safe:
            body = gsm_safe(body)
        counted = count_body(body)
        problem = _size_problem_of(counted)
        if problem:
            out.append(
                (result.e164, result.country, invalid, problem, counted.parts, counted.encoding)
            )
            continue
        out.append((result.e164, result.country, None, None, counted.parts, counted.encoding))
        if counted.encoding == UCS2:
            ucs2.extend(_ucs2_findings(template, values, body, counted.parts, work.gsm_safe))
    return out, ucs2


def _size_problem_of(counted: Any) -> str | None:
    from campaign.message import MAX_GSM7_CHARS, MAX_UCS2_CHARS

    limit = MAX_UCS2_CHARS if counted.encoding == UCS2 else MAX_GSM7_CHARS
    if counted.units > limit:
        return (
            f"message too long: {counted.units} {counted.encoding} characters "
            f"(the service takes at most {limit})"
        )
    return None


def _ucs2_findings(
    template: Template, values: dict[str, Any], body: str, parts: int, safe: bool
) -> list[tuple[str, str, int]]:
    chars = ucs2_characters(body)
    if not chars:
        return []
    # Parts the row would take if those characters were GSM-7: what they cost.
    gsm_parts = count_body("".join("?" if c in chars else c for c in body)).parts
    extra = parts - gsm_parts
    findings = []
    literal = gsm_safe(template.literal_text) if safe else template.literal_text
    for char in chars:
        sources = []
        if char in literal:
            sources.append("template")
        for column, value in values.items():
            if isinstance(value, str) and char in (gsm_safe(value) if safe else value):
                sources.append(f"column:{column}")
        for source in sources or ["template"]:
            findings.append((char, source, extra))
    return findings


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
    facts = inspect_file(path, options.encoding, options.delimiter)
    previous = ledger.find_import(campaign.id, facts.sha256)
    if previous is not None:
        return ImportSummary(None, previous, facts.encoding, facts.delimiter)
    if on_total:
        on_total(max(facts.lines - 1, 0))

    template = Template.parse(campaign.template)
    reader = _open_reader(path, facts)
    try:
        first = next(reader)
    except StopIteration:
        raise ImportFailed(f"{path} has no header row") from None
    headers = {_normalize_header(str(c)): str(c) for c in first.columns}
    if len(first) == 0:
        raise ImportFailed(f"{path} has a header but no data rows")
    phone_col = _pick_column(
        headers, options.phone_column, PHONE_COLUMN_NAMES, "phone", "--phone-column"
    )
    assert phone_col is not None
    country_col = (
        _pick_column(
            headers, options.country_column, COUNTRY_COLUMN_NAMES, "country", "--country-column"
        )
        if options.country_column
        else None
    )
    merge_cols: dict[str, str] = {}
    for column in template.columns:
        key = _normalize_header(column)
        if key not in headers:
            raise ImportFailed(
                f"the message uses column {{{column}}} but {path.name} has no such column "
                f"(columns: {', '.join(headers.values())})"
            )
        merge_cols[column] = headers[key]

    work = ChunkWork(
        campaign.template,
        campaign.gsm_safe,
        options.default_region.upper() if options.default_region else None,
        options.allow_non_mobile,
    )
    seen = {int(p[1:]) for p in ledger.known_phones(campaign.id)}
    summary = ImportSummary(None, None, facts.encoding, facts.delimiter)
    counters = {"accepted": 0, "duplicates": 0, "invalid": 0}
    ucs2_totals: dict[tuple[str, str], list[int]] = {}

    def chunks() -> Iterator[pd.DataFrame]:
        yield first
        yield from reader

    def payloads() -> Iterator[tuple[pd.DataFrame, tuple[Any, ...]]]:
        for frame in chunks():
            phones = frame[phone_col].tolist()
            regions = frame[country_col].tolist() if country_col else None
            fields = {name: frame[real].tolist() for name, real in merge_cols.items()}
            yield frame, (phones, regions, fields)

    executor = _executor_for(facts, options, work)

    def results() -> Iterator[tuple[pd.DataFrame, list[RowResult], list[tuple[str, str, int]]]]:
        if executor is None:
            _worker_init(work)
            for frame, args in payloads():
                rows, ucs2 = process_chunk(*args)
                yield frame, rows, ucs2
            return
        pending: list[tuple[pd.DataFrame, Any]] = []
        depth = 2 * (executor._max_workers if hasattr(executor, "_max_workers") else 2)
        for frame, args in payloads():
            pending.append((frame, executor.submit(process_chunk, *args)))
            if len(pending) >= depth:
                frame0, future = pending.pop(0)
                yield frame0, *future.result()
        for frame0, future in pending:
            yield frame0, *future.result()

    def batches() -> Iterator[list[dict[str, Any]]]:
        for frame, rows, ucs2 in results():
            batch = _to_ledger_rows(
                frame, rows, phone_col, merge_cols, seen, counters, summary.invalid_reasons
            )
            for char, source, extra in ucs2:
                slot = ucs2_totals.setdefault((char, source), [0, 0])
                slot[0] += 1
                slot[1] += extra
            if progress:
                progress(len(frame))
            yield batch

    def finish() -> tuple[int, int, int, list[dict[str, Any]]]:
        ucs2_rows = [
            {"character": c, "source": s, "rows": n, "extra_parts": extra}
            for (c, s), (n, extra) in ucs2_totals.items()
        ]
        return counters["accepted"], counters["duplicates"], counters["invalid"], ucs2_rows

    try:
        summary.record = ledger.write_import(
            campaign.id,
            filename=str(path),
            sha256=facts.sha256,
            phone_column=phone_col,
            columns=list(headers.values()),
            batches=batches(),
            finish=finish,
        )
    except UnicodeDecodeError as exc:
        raise ImportFailed(
            f"{path} is not valid {facts.encoding} (byte {exc.start} of a chunk); "
            "pass the right --encoding; nothing was imported"
        ) from None
    except pd.errors.ParserError as exc:
        raise ImportFailed(
            f"{path}: malformed CSV: {_one_line(exc)}; nothing was imported"
        ) from None
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
    return ProcessPoolExecutor(max_workers=workers, initializer=_worker_init, initargs=(work,))


def _open_reader(path: Path, facts: FileFacts) -> Iterator[pd.DataFrame]:
    try:
        reader = pd.read_csv(
            path,
            sep=facts.delimiter,
            encoding=facts.encoding,
            dtype=str,  # every cell is text: leading zeros and '+' survive, no 4155552671.0
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            chunksize=CHUNK_ROWS,
            engine="c",
            quotechar='"',
            doublequote=True,
        )
    except UnicodeDecodeError as exc:
        raise ImportFailed(
            f"{path} is not valid {facts.encoding} (byte {exc.start}); pass the right --encoding"
        ) from None
    except pd.errors.EmptyDataError:
        raise ImportFailed(f"{path} has no header row") from None
    except pd.errors.ParserError as exc:
        raise ImportFailed(f"{path}: malformed CSV: {_one_line(exc)}") from None
    return iter(reader)


def _to_ledger_rows(
    frame: pd.DataFrame,
    rows: list[RowResult],
    phone_col: str,
    merge_cols: dict[str, str],
    seen: set[int],
    counters: dict[str, int],
    reasons: Counter[str],
) -> list[dict[str, Any]]:
    raw_phones = frame[phone_col].tolist()
    numbers = (frame.index + 1).tolist()  # 1-based data row number in the file
    blank = _blank_rows(frame)
    field_values = {name: frame[real].tolist() for name, real in merge_cols.items()}
    pending = RecipientState.PENDING.value
    duplicate = RecipientState.DUPLICATE.value
    out: list[dict[str, Any]] = []
    for i, (e164, country, state, reason, parts, encoding) in enumerate(rows):
        if blank is not None and blank[i]:
            continue  # a wholly empty line is not a recipient; numbering still follows the file
        fields = (
            json.dumps({c: v[i] for c, v in field_values.items()}, ensure_ascii=False)
            if field_values
            else None
        )
        if state is None:
            key = int(e164[1:])  # type: ignore[index]
            if key in seen:
                state, reason = duplicate, "same number as an earlier row of this campaign"
                counters["duplicates"] += 1
            else:
                seen.add(key)
                state = pending
                counters["accepted"] += 1
        else:
            counters["invalid"] += 1
            reasons[_reason_kind(reason)] += 1
        out.append(
            {
                "row": numbers[i],
                "raw_phone": raw_phones[i],
                "phone": e164,
                "country": country,
                "fields": fields,
                "state": state,
                "reason": reason,
                "parts": parts,
                "encoding": encoding,
            }
        )
    return out


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


__all__ = ["ImportFailed", "ImportOptions", "ImportSummary", "import_file", "inspect_file"]
