#!/usr/bin/env bash
# The whole story against the bundled local simulator: no AWS account, no network, no cost.
# Run through `make demo` (which installs everything first).
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${DEMO_PORT:-4599}"
RUN=demo-run
rm -rf "$RUN" && mkdir -p "$RUN"
export CAMPAIGN_DB="sqlite:///$RUN/campaign.db"
# The standard boto3 variable: every `campaign` command below talks to the simulator.
export AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2="http://127.0.0.1:$PORT"
export CAMPAIGN_FORCE_PROGRESS=1

step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

echo "Starting the local SMS simulator on 127.0.0.1:$PORT (20 MPS, 80 ms latency)."
campaign simulator --port "$PORT" --mps 20 --latency-ms 80 --jitter-ms 40 \
  --opt-out +13125550187 --log "$RUN/simulator.jsonl" 2>"$RUN/simulator.log" &
SIM=$!
trap 'kill $SIM 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  grep -q "listening" "$RUN/simulator.log" 2>/dev/null && break
  kill -0 $SIM 2>/dev/null || { cat "$RUN/simulator.log"; exit 1; }
  sleep 0.1
done

step "1. Create the campaign (every option checked against the API's limits)" \
  campaign create spring-sale --origination-identity +12065550100 \
  --message-file samples/message.txt --max-price 0.05 --context team=growth
step "2. Import the recipients (normalized to E.164; bad rows kept with their reason)" \
  campaign import spring-sale samples/recipients.csv --default-region US --country-column country
step "3. Estimate cost and time, offline" \
  campaign estimate spring-sale --prices samples/prices.csv --mps 5
step "4. Ask the API to validate a sample (DryRun: nothing delivered, nothing charged)" \
  campaign send spring-sale --dry-run --sample 8
step "5. Send for real, paced at 5 parts per second" \
  campaign send spring-sale --mps 5 --prices samples/prices.csv --yes
step "6. Status" \
  campaign status spring-sale --prices samples/prices.csv
step "7. Report: one row per input row" \
  campaign report spring-sale --output "$RUN/report.csv"
step "8. The HTML report to show someone else (opens offline; charts also as PNGs)" \
  campaign report spring-sale --html "$RUN/report.html" --png "$RUN/charts" --prices samples/prices.csv
echo
echo "Report: $RUN/report.csv   Ledger: $RUN/campaign.db   Simulator log: $RUN/simulator.jsonl"
echo "Run 'make demo' again any time; it starts from scratch."
echo "HTML report: $(pwd)/$RUN/report.html"
