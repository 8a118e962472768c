"""Event files: JSON Lines, Firehose output (events concatenated, with or without newlines), gzip,
and folders of them. Read in bounded chunks, so a file of any size takes little memory."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from campaign.errors import UserError
from campaign.events.parse import Parsed, parse_chunk, resume_at

CHUNK_CHARS = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")  # PowerShell's `>` writes UTF-16


class EventFileError(UserError):
    """An events file or folder that cannot be read: one line."""


def event_files(paths: Iterable[Path]) -> list[Path]:
    """The files to read: each file given, and every file under each folder given (sorted, hidden
    files skipped), in the order given."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.exists():  # a file, or a pipe given by name: `--file <(zcat ...)`
            found.append(path)
        else:
            raise EventFileError(f"{path}: no such file or folder")
    return found


def read_events(path: Path, chunk_chars: int = CHUNK_CHARS) -> Iterator[Parsed]:
    """Every event (or rejected input) in one file, gzip or not (told by its first bytes)."""
    try:
        with path.open("rb") as raw, _open_text(raw) as fh:
            yield from _read_stream(fh, chunk_chars)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:  # EOFError: a truncated gzip file
        raise EventFileError(
            f"{path}: a damaged gzip file ({exc}); move it aside and run again (the events "
            "this run recorded are not counted twice)"
        ) from None
    except OSError as exc:
        raise EventFileError(f"{path}: {getattr(exc, 'strerror', None) or exc}") from None


def _open_text(raw: io.BufferedReader) -> IO[str]:
    """`raw` as text, through gzip when its first bytes say so: peeked, not read, so that a pipe
    (read only once) loses nothing."""
    magic = raw.peek(2)[:2]
    # A byte that is not UTF-8 cannot be in a valid event: replace it and let parsing judge.
    # utf-8-sig: a byte order mark (a Windows tool's) is not the start of the first event.
    if magic == GZIP_MAGIC:
        return io.TextIOWrapper(gzip.GzipFile(fileobj=raw), encoding="utf-8-sig", errors="replace")
    encoding = "utf-16" if magic in UTF16_BOMS else "utf-8-sig"
    return io.TextIOWrapper(raw, encoding=encoding, errors="replace")


def _read_stream(fh: IO[str], chunk_chars: int) -> Iterator[Parsed]:
    """Decode value after value; a value cut by the chunk boundary waits for the next chunk."""
    carry = ""
    skipping = False  # in the rest of an undecodable value, already counted: not a new input
    while True:
        chunk = fh.read(chunk_chars)
        final = chunk == ""
        text = carry + chunk if carry else chunk
        if skipping:
            resume = resume_at(text, 0)
            if resume < 0:
                if final:
                    return
                carry = "}" if text.endswith("}") else ""  # a `}{` across the boundary
                continue
            text, skipping = text[resume:], False
        items, used, skipping = parse_chunk(text, final=final)
        yield from items
        if final:
            return
        carry = text[used:]
