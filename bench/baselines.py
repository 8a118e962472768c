"""The explicit baselines: what a user would write without the tool. Each runs in its own process
(``python -m bench.baselines KIND ...``) so its memory and CPU are its own, and prints one JSON
object on stdout.

  phones FILE   read the phone column, then the plain loop: phonenumbers.parse(raw, REGION) +
                is_valid_number + format_number(E164), NumberParseException caught
  naive URL     one boto3 client, send_text_message then time.sleep(1/MPS), for SECONDS
  bare URL      N sequential send_text_message calls; CPU from time.process_time() around the
                loop (client creation and one warm-up call excluded)
  threaded URL  the same calls from a thread pool of CONCURRENCY threads, paced at RATE calls/s
                (the tool's shape without the tool): CPU per call
  sql DB KIND   the one GROUP BY query `status` or `estimate` needs at least, with sqlite3
"""

from __future__ import annotations

import argparse
import csv
import json
import sqlite3
import sys
import time
from typing import Any


def _peak_rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def phones(args: argparse.Namespace) -> dict[str, Any]:
    import phonenumbers
    from phonenumbers import NumberParseException, PhoneNumberFormat

    started = time.perf_counter()
    with open(args.file, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        index = header.index(args.column)
        raws = [row[index] for row in reader]
    read_s = time.perf_counter() - started

    parse, is_valid, format_number = (
        phonenumbers.parse,
        phonenumbers.is_valid_number,
        phonenumbers.format_number,
    )
    e164_format = PhoneNumberFormat.E164
    region = args.region
    valid = unparseable = 0
    started = time.perf_counter()
    cpu_started = time.process_time()
    for raw in raws:
        try:
            number = parse(raw, region)
        except NumberParseException:
            unparseable += 1
            continue
        if is_valid(number):
            format_number(number, e164_format)
            valid += 1
    loop_s = time.perf_counter() - started
    return {
        "rows": len(raws),
        "valid": valid,
        "unparseable": unparseable,
        "read_s": read_s,
        "loop_s": loop_s,
        "loop_cpu_s": time.process_time() - cpu_started,
        "rows_per_s": len(raws) / loop_s,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _client(url: str, extra: Any = None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"total_max_attempts": 1})
    if extra is not None:
        config = config.merge(extra)

    return boto3.client(
        "pinpoint-sms-voice-v2",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=config,
    )


def _destinations(count: int) -> list[str]:
    # Distinct, valid US numbers; the simulator only checks the E.164 shape and the opt-out list.
    return [f"+1206{200 + i // 10_000:03d}{i % 10_000:04d}" for i in range(count)]


def naive(args: argparse.Namespace) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    client = _client(args.url)
    body = args.body
    destinations = _destinations(100_000)
    sent = throttled = errors = 0
    pause = 1.0 / args.mps
    started = time.monotonic()
    deadline = started + args.seconds
    i = 0
    while time.monotonic() < deadline:
        try:
            client.send_text_message(
                DestinationPhoneNumber=destinations[i % len(destinations)],
                OriginationIdentity=args.identity,
                MessageBody=body,
                MessageType="PROMOTIONAL",
                Context={"campaign": args.tag},  # only so the benchmark can find its log lines
            )
            sent += 1
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ThrottlingException":
                throttled += 1
            else:
                errors += 1
        i += 1
        time.sleep(pause)
    elapsed = time.monotonic() - started
    return {
        "calls": i,
        "sent": sent,
        "throttled": throttled,
        "errors": errors,
        "elapsed_s": elapsed,
    }


def bare(args: argparse.Namespace) -> dict[str, Any]:
    client = _client(args.url)
    destinations = _destinations(args.count + 1)
    request = {
        "OriginationIdentity": args.identity,
        "MessageBody": args.body,
        "MessageType": "PROMOTIONAL",
    }
    client.send_text_message(DestinationPhoneNumber=destinations[-1], **request)  # warm-up
    wall_started = time.perf_counter()
    cpu_started = time.process_time()
    for destination in destinations[: args.count]:
        client.send_text_message(DestinationPhoneNumber=destination, **request)
    cpu = time.process_time() - cpu_started
    wall = time.perf_counter() - wall_started
    return {
        "calls": args.count,
        "cpu_s": cpu,
        "wall_s": wall,
        "cpu_per_call_ms": 1000 * cpu / args.count,
        "wall_per_call_ms": 1000 * wall / args.count,
    }


def threaded(args: argparse.Namespace) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    from botocore.config import Config

    client = _client(args.url, Config(max_pool_connections=args.concurrency + 2))
    destinations = _destinations(args.count + 1)

    def call(destination: str) -> None:
        client.send_text_message(
            DestinationPhoneNumber=destination,
            OriginationIdentity=args.identity,
            MessageBody=args.body,
            MessageType="PROMOTIONAL",
        )

    call(destinations[-1])  # warm-up
    wall_started = time.perf_counter()
    cpu_started = time.process_time()
    with ThreadPoolExecutor(args.concurrency) as pool:
        futures = []
        for i, destination in enumerate(destinations[: args.count]):
            delay = wall_started + i / args.rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(call, destination))
        for future in futures:
            future.result()
    cpu = time.process_time() - cpu_started
    wall = time.perf_counter() - wall_started
    return {
        "calls": args.count,
        "concurrency": args.concurrency,
        "rate": args.rate,
        "cpu_s": cpu,
        "wall_s": wall,
        "cpu_per_call_ms": 1000 * cpu / args.count,
    }


QUERIES = {
    # what `status` must count at least
    "status": "SELECT state, count(*), sum(parts) FROM recipients WHERE campaign_id = ? "
    "GROUP BY state",
    # what `estimate` must group at least
    "estimate": "SELECT country, encoding, parts, count(*) FROM recipients "
    "WHERE campaign_id = ? AND state = 'pending' GROUP BY country, encoding, parts",
}


def sql(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    connection = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    (campaign_id,) = connection.execute(
        "SELECT id FROM campaigns WHERE name = ?", (args.campaign,)
    ).fetchone()
    rows = connection.execute(QUERIES[args.what], (campaign_id,)).fetchall()
    connection.close()
    return {
        "rows": len(rows),
        "query_s": time.perf_counter() - started,
        "peak_rss_mb": _peak_rss_mb(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.baselines", description=__doc__)
    sub = parser.add_subparsers(dest="kind", required=True)
    p = sub.add_parser("phones")
    p.add_argument("file")
    p.add_argument("--column", default="phone")
    p.add_argument("--region", default="US")
    p.set_defaults(run=phones)
    p = sub.add_parser("naive")
    p.add_argument("url")
    p.add_argument("--mps", type=float, required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--identity", required=True)
    p.add_argument("--body", required=True)
    p.add_argument("--tag", required=True)
    p.set_defaults(run=naive)
    p = sub.add_parser("bare")
    p.add_argument("url")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--identity", required=True)
    p.add_argument("--body", required=True)
    p.set_defaults(run=bare)
    p = sub.add_parser("threaded")
    p.add_argument("url")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--concurrency", type=int, required=True)
    p.add_argument("--identity", required=True)
    p.add_argument("--body", required=True)
    p.set_defaults(run=threaded)
    p = sub.add_parser("sql")
    p.add_argument("db")
    p.add_argument("campaign")
    p.add_argument("what", choices=sorted(QUERIES), metavar="KIND")
    p.set_defaults(run=sql)
    args = parser.parse_args(argv)
    json.dump(args.run(args), sys.stdout)
    print()


if __name__ == "__main__":
    main()
