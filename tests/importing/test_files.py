"""The file itself: mixed encodings, headers too wide or too long to be headers."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import pytest

from campaign.importing.files import MAX_COLUMNS
from tests.helpers import Cli

ORIGIN = "+12065550100"

pytestmark = pytest.mark.usefixtures("start_from_migrated_ledger")


def report(run: Cli) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(run("report", "c").stdout)))


def mixed_file(path: Path, rows: int, cp1252_at: list[int]) -> Path:
    """`rows` UTF-8 data rows (Renée: é is GSM-7), with the rows at `cp1252_at` (1-based data
    rows) written in Windows-1252, as when a row is pasted in from another export."""
    with path.open("wb") as fh:
        fh.write(b"first_name,phone\n")
        for i in range(1, rows + 1):
            line = f"Renée,+1206555{i:04d}\n"
            fh.write(line.encode("cp1252" if i in cp1252_at else "utf-8"))
    return path


def test_mixed_utf8_and_windows_1252_is_decoded_line_by_line(run: Cli, tmp_path: Path) -> None:
    path = mixed_file(tmp_path / "mixed.csv", 9_000, cp1252_at=[8_500])
    run("create", "c", "-o", ORIGIN, "-m", "Hi {first_name}")
    result = run("import", "c", str(path), "--default-region", "US")
    # Never silent: the odd line is named (the header is line 1, so data row 8,500 is line 8,501).
    assert (
        "Warning: mixed.csv is UTF-8 except 1 line(s) in Windows-1252 (line 8501): each line was "
        "decoded in its own encoding" in result.stderr
    )
    assert "(utf-8 and cp1252, delimiter ',')" in result.stderr
    rows = report(run)
    assert len(rows) == 9_000
    # Every Renée is Renée: no message switched to UCS-2 (it would, as RenÃ©e).
    assert {(r["state"], r["encoding"], r["parts"]) for r in rows} == {("pending", "GSM-7", "1")}
    status = run.json("status", "c", "--json")
    assert status["counts"]["pending"] == 9_000


def test_many_cp1252_lines_are_counted_and_the_first_named(run: Cli, tmp_path: Path) -> None:
    path = mixed_file(tmp_path / "mixed.csv", 40, cp1252_at=list(range(5, 40, 2)))
    run("create", "c", "-o", ORIGIN, "-m", "Hi {first_name}")
    result = run("import", "c", str(path), "--default-region", "US")
    assert "except 18 line(s) in Windows-1252 (line 6, 8, 10," in result.stderr
    assert "and 8 more)" in result.stderr
    assert {r["encoding"] for r in report(run)} == {"GSM-7"}


def test_forcing_a_single_byte_encoding_on_utf8_warns(run: Cli, tmp_path: Path) -> None:
    path = mixed_file(tmp_path / "utf8.csv", 3, cp1252_at=[])
    run("create", "c", "-o", ORIGIN, "-m", "Hi {first_name}")
    result = run("import", "c", str(path), "--default-region", "US", "--encoding", "cp1252")
    assert "Warning: 3 line(s) of utf8.csv are valid UTF-8 but were read as cp1252" in result.stderr


def test_a_pure_windows_1252_file_is_still_windows_1252(run: Cli, tmp_path: Path) -> None:
    path = mixed_file(tmp_path / "cp.csv", 3, cp1252_at=[1, 2, 3])
    run("create", "c", "-o", ORIGIN, "-m", "Hi {first_name}")
    result = run("import", "c", str(path), "--default-region", "US")
    assert "(cp1252, delimiter ',')" in result.stderr
    assert "Warning" not in result.stderr


def test_a_header_of_80000_repeated_names_is_refused_at_once(run: Cli, tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(",".join(["phone"] * 80_000) + "\n" + ",".join(["1"] * 80_000) + "\n")
    run("create", "c", "-o", ORIGIN, "-m", "Hi")
    started = time.monotonic()
    result = run("import", "c", str(path), code=1)
    assert result.stderr.strip() == (
        f"Error: wide.csv has 80,000 columns with delimiter ','; at most {MAX_COLUMNS:,} are read "
        "(wrong --delimiter? or keep only the columns you need)"
    )
    assert time.monotonic() - started < 30  # was 47 s; generous for a loaded machine


def test_a_header_line_of_10_mb_is_refused(run: Cli, tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text("phone" + "x" * 10_000_000 + "\n+12065550100\n")
    run("create", "c", "-o", ORIGIN, "-m", "Hi")
    result = run("import", "c", str(path), code=1)
    assert "the first line is longer than 1,048,576 characters" in result.stderr


def test_as_many_columns_as_allowed_still_import(run: Cli, tmp_path: Path) -> None:
    names = ["phone", *(f"c{i}" for i in range(MAX_COLUMNS - 1))]
    path = tmp_path / "wide.csv"
    path.write_text(",".join(names) + "\n" + "+12065550100" + "," * (MAX_COLUMNS - 1) + "\n")
    run("create", "c", "-o", ORIGIN, "-m", "Hi {c1999|there}")
    run("import", "c", str(path))
    assert [r["state"] for r in report(run)] == ["pending"]
