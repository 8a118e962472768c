"""`pg-import`: the import section's CSV imported into a PostgreSQL ledger and, in the same run, into
a SQLite one (the baseline), then the same for a do-not-send list as long as the file. PostgreSQL
is a throwaway server started from the machine's binaries (tests/postgres.py: initdb, pg_ctl;
durability off, as for the tests), so the figure is the tool's side of the work plus a local
server, not a network round trip to RDS. Skipped, with a line, without PostgreSQL binaries."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bench import data
from bench.runner import Measured
from bench.sections import ORIGINATION, Bench, Row, fresh_db, say

NAME = "pgbig"


def section_pg_import(b: Bench) -> None:
    import os

    from tests.postgres import SUPERUSER, PostgresCluster, find_binaries

    s = b.settings
    bin_dir = find_binaries()
    if bin_dir is None:
        say("[pg-import] skipped: no PostgreSQL binaries (apt-get install postgresql)")
        return
    facts = data.big_csv(s.out, s.rows, s.seed)
    numbers = _list_file(s.out, facts.path)
    root = Path(tempfile.mkdtemp(prefix="campaign-pg-bench-"))
    if os.geteuid() == 0:
        shutil.chown(root, SUPERUSER, SUPERUSER)
    cluster = PostgresCluster(bin_dir, root)
    try:
        cluster.start()
        say(f"[pg-import] {s.rows:,} rows; PostgreSQL from {bin_dir} on port {cluster.port}")
        urls = {
            "sqlite": f"sqlite:///{fresh_db(s.out / 'pg-import-baseline.db')}",
            "postgresql": cluster.url(cluster.create_database()),
        }
        timeout = max(900.0, s.rows / 200)
        measured: dict[str, dict[str, Measured]] = {}
        for dialect, url in urls.items():
            env = {"CAMPAIGN_DB": url}
            run = b.runner.run
            steps = {
                "create": [b.campaign_bin, "-q", "create", NAME, "-o", ORIGINATION, "-m",
                           data.BIG_TEMPLATE, "--no-window"],
                "import": [b.campaign_bin, "-q", "import", NAME, facts.path,
                           "--default-region", "US"],
                "suppress": [b.campaign_bin, "-q", "suppress", "add", str(numbers),
                             "--default-region", "US"],
                "status": [b.campaign_bin, "-q", "status", NAME, "--json"],
            }  # fmt: skip
            measured[dialect] = {
                step: run(f"pg-import-{dialect}-{step}", argv, timeout=timeout, env=env).check(
                    f"campaign {step} on {dialect}"
                )
                for step, argv in steps.items()
            }
    finally:
        if cluster.port:
            try:
                cluster.stop()
            except RuntimeError as exc:
                say(f"  could not stop the PostgreSQL server: {exc}")
        shutil.rmtree(root, ignore_errors=True)

    pg, lite = measured["postgresql"], measured["sqlite"]
    counts = {d: m["status"].json()["counts"] for d, m in measured.items()}
    if counts["postgresql"] != counts["sqlite"]:
        say(f"  NOTE: the two ledgers differ: {counts}")
    b.details["pg_import"] = {
        "rows": s.rows,
        "list_numbers": s.rows,
        "server": "local throwaway PostgreSQL (fsync off), same machine",
        **{d: {step: m.summary() for step, m in steps.items()} for d, steps in measured.items()},
        "counts": counts,
    }
    for step, what in (("import", "import"), ("suppress", "suppress add (same-size list)")):
        rate, base = s.rows / pg[step].wall_s, s.rows / lite[step].wall_s
        b.add(
            Row(
                "pg-import",
                f"{what} on PostgreSQL (rows/s)",
                rate,
                "rows/s",
                base,
                "the same on SQLite",
                rate / base,
                note=f"{pg[step].wall_s:.1f} s vs {lite[step].wall_s:.1f} s",
            )
        )
    print(
        f"\n== pg-import: {s.rows:,} rows ==\n"
        + "".join(
            f"  {step:<9} PostgreSQL {pg[step].wall_s:7.2f} s   SQLite {lite[step].wall_s:7.2f} s"
            f"   ratio {pg[step].wall_s / lite[step].wall_s:.2f}\n"
            for step in ("create", "import", "suppress", "status")
        ),
        flush=True,
    )


def _list_file(out: Path, csv_path: str) -> Path:
    """A do-not-send list as long as the import: every number of the import's phone column (so
    the list's numbers are real, varied and partly repeated, as lists are)."""
    path = out / f"dnc-{Path(csv_path).stem}.csv"
    if not path.exists():
        import csv

        with open(csv_path, newline="", encoding="utf-8") as src, path.open("w") as dst:
            reader = csv.DictReader(src)
            dst.write("phone\n")
            for row in reader:
                dst.write((row.get("phone") or "") + "\n")
    return path
