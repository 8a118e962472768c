"""The file an import reads: standard input spooled to disk, the encoding (UTF-8, UTF-16,
Windows-1252, or both of the first and last mixed line by line), the delimiter, the header row,
and pandas reading the rows in chunks with every cell as text.

One pass over the bytes comes first (hash for "already imported", encoding check, line count for
the progress bar), so that a stray byte on line 900,000 is reported with its line before anything
is written. Every problem is an `ImportFailed` with one line.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from typing_extensions import Buffer

from campaign.errors import UserError

# The start of the file, for the delimiter sniffer and the byte-order-mark / binary checks.
HEAD_BYTES = 65_536
# pandas' cost per column grows with the square of repeated header names (80,000 columns took
# 47 s), and a row of a very wide file is mostly empty cells: past this the file is refused.
MAX_COLUMNS = 2_000
# A header row longer than this is not a header (a binary file, or no line breaks at all).
MAX_HEADER_CHARS = 1 << 20
DELIMITERS = ",;\t|"
STDIN = "-"
STDIN_NAME = "<stdin>"  # how an import from standard input is recorded (the report's `file`)
# UTF-8 where a line is valid UTF-8, Windows-1252 where it is not: see _MixedLineDecoder.
MIXED_ENCODING = "utf_8_or_cp1252_by_line"


class ImportFailed(UserError):
    """The file cannot be imported; nothing was written. The message is one line."""


class ReadError(ImportFailed):
    """pandas could not read part of the file (raised while rows are being written)."""


@dataclass(frozen=True)
class FileFacts:
    sha256: str
    encoding: str  # the codec the file is read with
    delimiter: str
    size: int
    lines: int
    # Line numbers (header = 1) decoded as Windows-1252 in a mostly UTF-8 file, the first few,
    # and how many in all: such a file is read line by line, each line in its own encoding.
    cp1252_lines: tuple[int, ...] = ()
    cp1252_count: int = 0
    utf8_lines: int = 0  # lines with non-ASCII text that are valid UTF-8

    @property
    def encoding_label(self) -> str:
        if self.encoding == MIXED_ENCODING:
            return "utf-8 and cp1252"
        return self.encoding


@dataclass(frozen=True)
class Source:
    """The file to read and how to name it: in messages, and in the ledger (the report's `file`)."""

    path: Path
    label: str  # "customers.csv" or "standard input", for messages
    recorded: str  # what imports.filename keeps


@contextlib.contextmanager
def open_source(path: Path, stdin: BinaryIO | None = None) -> Iterator[Source]:
    """`path`, or for `-` standard input copied to a temporary file first (an import reads its
    file twice: the hash and checks, then the rows), removed afterwards."""
    if str(path) != STDIN:
        yield Source(path, path.name, str(path))
        return
    stream = stdin if stdin is not None else sys.stdin.buffer
    fd, name = tempfile.mkstemp(prefix="campaign-stdin-", suffix=".csv")
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(stream, out, 1 << 20)
        yield Source(Path(name), "standard input", STDIN_NAME)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


# -- encoding --------------------------------------------------------------------------------------


def inspect_file(source: Source, encoding: str | None, delimiter: str | None) -> FileFacts:
    """Hash the file, settle its encoding and delimiter, count its lines."""
    path, label = source.path, source.label
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImportFailed(f"cannot read {label}: {exc.strerror}") from None
    if size == 0:
        raise ImportFailed(f"{label} is empty: expected a header row and at least one data row")
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
    _refuse_binary(label, head, encoding)
    by_line = LineEncodings()
    if encoding is None:
        encoding, by_line = _detect_encoding(source, head, checker)
    elif checker.error is not None:
        raise ImportFailed(
            f"{label} is not valid {encoding}: {checker.error}; pass the right --encoding "
            "(utf-8, cp1252 or latin-1 are the usual ones)"
        )
    elif _single_byte(encoding):
        by_line = _line_encodings(path)  # to warn about UTF-8 lines read as cp1252
    text = head.decode(encoding, errors="ignore").lstrip("\ufeff")
    delimiter = _settle_delimiter(text, delimiter)
    return FileFacts(
        digest.hexdigest(),
        encoding,
        delimiter,
        size,
        lines,
        tuple(by_line.cp1252[:10]),
        by_line.cp1252_count,
        by_line.utf8,
    )


def _settle_delimiter(text: str, delimiter: str | None) -> str:
    if delimiter is None:
        delimiter = _sniff_delimiter(text)
    elif delimiter in ("\\t", "tab", "TAB"):
        delimiter = "\t"
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise ImportFailed(
            f"--delimiter must be one character other than a quote or a line break, "
            f"not {delimiter!r}"
        )
    return delimiter


def _single_byte(encoding: str) -> bool:
    name = codecs.lookup(encoding).name
    return name in ("cp1252", "iso8859-1", "latin-1", "iso8859-15") or name.startswith("cp125")


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


@dataclass
class LineEncodings:
    """Which lines of a file are UTF-8 with non-ASCII text, and which are not UTF-8 at all."""

    utf8: int = 0
    cp1252: list[int] = field(default_factory=list)  # the first line numbers (header = 1)
    cp1252_count: int = 0


def _line_encodings(path: Path) -> LineEncodings:
    found = LineEncodings()
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if line.isascii():
                continue
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                found.cp1252_count += 1
                if len(found.cp1252) < 10:
                    found.cp1252.append(number)
            else:
                found.utf8 += 1
    return found


def _detect_encoding(source: Source, head: bytes, utf8: _DecodeCheck) -> tuple[str, LineEncodings]:
    path, label = source.path, source.label
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        problem = _first_decode_error(path, "utf-16")
        if problem is not None:
            raise ImportFailed(
                f"{label} starts like UTF-16 (byte order mark) but {problem}; "
                "pass the right --encoding"
            )
        return "utf-16", LineEncodings()
    if utf8.error is None:
        return ("utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"), LineEncodings()
    # Not UTF-8 throughout. Excel on Windows writes cp1252 (latin-1 plus curly quotes, dashes and
    # the euro sign). But a file that is UTF-8 except for some lines (a row pasted from another
    # export) read as cp1252 turns every UTF-8 name into mojibake (Renée -> RenÃ©e, and the
    # message into UCS-2): such a file is read line by line, each line as what it is.
    by_line = _line_encodings(path)
    if by_line.utf8 or head.startswith(codecs.BOM_UTF8):
        return MIXED_ENCODING, by_line
    # The five bytes cp1252 leaves undefined mean it is not cp1252; latin-1 decodes anything.
    encoding = "cp1252" if _first_decode_error(path, "cp1252") is None else "latin-1"
    return encoding, LineEncodings()


def _decode_line(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return line.decode("cp1252")
    except UnicodeDecodeError:  # one of the five bytes cp1252 leaves undefined: latin-1 has them
        return line.decode("latin-1")


class _MixedLineDecoder(codecs.IncrementalDecoder):
    """Each line as UTF-8 when it is, else as Windows-1252; a leading byte order mark dropped."""

    def __init__(self, errors: str = "strict") -> None:
        super().__init__(errors)
        self._held = b""
        self._first = True

    def decode(self, input: Buffer, final: bool = False) -> str:
        data = self._held + bytes(input)
        cut = len(data) if final else data.rfind(b"\n") + 1
        self._held, ready = data[cut:], data[:cut]
        if self._first and ready:
            self._first = False
            ready = ready.removeprefix(codecs.BOM_UTF8)
        try:
            return ready.decode("utf-8")  # nearly every block: one C call
        except UnicodeDecodeError:
            return "".join(_decode_line(line) for line in ready.splitlines(keepends=True))

    def reset(self) -> None:
        self._held, self._first = b"", True

    def getstate(self) -> tuple[bytes, int]:
        return self._held, int(self._first)

    def setstate(self, state: tuple[bytes, int]) -> None:
        self._held, self._first = state[0], bool(state[1])


def _mixed_decode(data: Buffer, errors: str = "strict", /) -> tuple[str, int]:
    return _MixedLineDecoder(errors).decode(data, final=True), len(bytes(data))


def _find_codec(name: str) -> codecs.CodecInfo | None:
    if name.replace("-", "_") != MIXED_ENCODING:
        return None
    utf8 = codecs.lookup("utf-8")
    return codecs.CodecInfo(
        encode=utf8.encode,
        decode=_mixed_decode,
        incrementalencoder=utf8.incrementalencoder,
        incrementaldecoder=_MixedLineDecoder,
        name=MIXED_ENCODING,
    )


codecs.register(_find_codec)


def _refuse_binary(label: str, head: bytes, encoding: str | None) -> None:
    """A workbook or other binary file is not a CSV: say so instead of reading garbage."""
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFailed(
            f"{label} is a spreadsheet workbook or an archive, not a CSV: "
            "save it as 'CSV UTF-8' first"
        )
    if (
        encoding is None
        and b"\x00" in head
        and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    ):
        raise ImportFailed(
            f"{label} contains NUL bytes: not a text CSV, or UTF-16 without a byte order mark "
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


# -- the header ------------------------------------------------------------------------------------


def read_header(source: Source, facts: FileFacts) -> list[str]:
    """The header row as written (csv module, the same quoting rules as pandas), refused when it
    is too long or too wide to be a header, or when it is one column holding another delimiter."""
    label = source.label
    with source.path.open(encoding=facts.encoding, newline="", errors="replace") as fh:
        text = fh.read(MAX_HEADER_CHARS)
    text = text.removeprefix("\ufeff")
    if len(text) >= MAX_HEADER_CHARS and "\n" not in text and "\r" not in text:
        raise ImportFailed(
            f"{label}: the first line is longer than {MAX_HEADER_CHARS:,} characters: "
            "not a CSV header row"
        )
    if not text.strip():
        raise ImportFailed(f"{label} has no header row")
    reader = csv.reader(io.StringIO(text), delimiter=facts.delimiter, quotechar='"')
    try:
        names = next(reader, [])
    except csv.Error as exc:
        raise ImportFailed(f"{label}: the header row cannot be read: {exc}") from None
    if len(names) > MAX_COLUMNS:
        raise ImportFailed(
            f"{label} has {len(names):,} columns with delimiter {facts.delimiter!r}; at most "
            f"{MAX_COLUMNS:,} are read (wrong --delimiter? or keep only the columns you need)"
        )
    if len(names) == 1:
        others = [d for d in DELIMITERS if d != facts.delimiter and d in names[0]]
        if others:
            raise ImportFailed(
                f"{label} read with delimiter {facts.delimiter!r} has one column, "
                f"{names[0]!r}: pass --delimiter {others[0]!r}"
            )
    return [name.strip() for name in names]


# -- the rows --------------------------------------------------------------------------------------

_FIELD_COUNT = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_OPEN_QUOTE = re.compile(r"EOF inside string starting at row (\d+)")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _parser_problem(label: str, exc: Exception) -> str:
    """pandas' tokenizer error as a line a user can act on. Its "line" counts records (the header
    is line 1, a quoted field with line breaks is one line), so line - 1 is the data row number
    that `campaign report` uses."""
    text = _one_line(exc)
    found = _FIELD_COUNT.search(text)
    if found:
        expected, line, saw = (int(g) for g in found.groups())
        return (
            f"{label}: malformed CSV: data row {line - 1} has {saw} fields but the header has "
            f"{expected} (quote a field that contains the delimiter)"
        )
    found = _OPEN_QUOTE.search(text)
    if found:
        return (
            f"{label}: malformed CSV: the quoted field opened in data row {found.group(1)} is "
            "never closed"
        )
    return f"{label}: malformed CSV: {text.removeprefix('Error tokenizing data. C error: ')}"


def read_chunks(source: Source, facts: FileFacts, columns: int, rows: int) -> Iterator[Any]:
    """The file as DataFrames of `rows` rows, every cell text, columns labelled by position
    (0, 1, ...: two columns of one name stay two). Read errors, wherever in the file they
    happen, arrive as ReadError with one clear line."""
    import pandas as pd

    label = source.label
    try:
        reader = _quietly(
            lambda: pd.read_csv(
                source.path,
                sep=facts.delimiter,
                encoding=facts.encoding,
                dtype=str,  # every cell is text: leading zeros and '+' survive, no 4155552671.0
                keep_default_na=False,
                na_filter=False,
                skip_blank_lines=False,
                header=0,
                names=list(range(columns)),
                # A trailing delimiter on every data line must not make the first column the
                # index (that shifts every column by one): the header says what the columns are.
                index_col=False,
                chunksize=rows,
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
        raise ReadError(
            f"{label} is not valid {facts.encoding} (byte {exc.start} of a block); "
            "pass the right --encoding"
        ) from None
    except pd.errors.EmptyDataError:
        raise ReadError(f"{label} has no header row") from None
    except pd.errors.ParserError as exc:
        raise ReadError(_parser_problem(label, exc)) from None


def _quietly(call: Callable[[], Any]) -> Any:
    # pandas warns when index_col=False drops a trailing empty field; that is the point of it.
    # Scoped to one call, never across a `yield`, so the caller's warning filters stay intact.
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.ParserWarning)
        return call()
