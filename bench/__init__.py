"""Benchmarks of the `campaign` CLI, apart from the tests: `make bench` (= `python -m bench`).

Every figure is a ratio against a baseline measured in the same run, never a bare time:

  import    `campaign create` + `campaign import` of a seeded 1,000,000-row CSV (mixed phone
            formats, ~3% invalid, ~2% repeats, some non-GSM names) vs. the plain phonenumbers
            loop over the same column; peak memory; `campaign status --json` on the result
  estimate  `campaign estimate --prices samples/prices.csv --json` on that campaign
  send      `campaign send` against `campaign simulator` (limit = --mps = 10, 100, 500; 100 ms
            latency) for 1- and 3-part messages: steady-state parts/s from the simulator's log,
            and throttled calls; beside it the naive boto3 loop (send, sleep 1/MPS)
  cpu       CPU per message of `campaign send` at 100 MPS vs. a bare boto3 call
  controller  `campaign send --mps 200` against random throttles + 500s, a hidden limit of 120,
            and both: accepted messages/s against issue 8's goals (bench/controller.py)
  report    `campaign report --html` of that campaign, sent by SQL as three runs with delivery
            events: time and page size against the CSV report (bench/report.py)

    python -m bench                 everything (about 10 minutes)
    python -m bench --quick         scaled down (100k rows, 5 s windows): a sanity check
    python -m bench import send     only some sections

Each CLI step runs `campaign` as a child process with CAMPAIGN_DB pointing into bench-run/, where
the generated data, the ledgers, the simulator logs, every child's stdout/stderr (bench-run/logs/)
and the results (bench-run/results.json) go.
"""
