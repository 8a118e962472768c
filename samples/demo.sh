#!/usr/bin/env bash
# The whole story against the bundled local simulator: no AWS account, no network, no cost.
# SMS from the project's simulator; SNS and SQS (where delivery events arrive) from moto's server.
# Run through `make demo` (which installs everything first).
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${DEMO_PORT:-4599}"
RUN=demo-run
rm -rf "$RUN" && mkdir -p "$RUN"
export CAMPAIGN_DB="sqlite:///$RUN/campaign.db"
# The standard boto3 variables: every `campaign` command below talks to the simulator (SMS) and to
# moto (SNS, SQS); so does the simulator itself when it publishes delivery events.
export AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2="http://127.0.0.1:$PORT"
export CAMPAIGN_FORCE_PROGRESS=1

step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
wait_for() {  # wait_for FILE PATTERN PID: until PATTERN shows in FILE, or the process died
  for _ in $(seq 100); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { cat "$1"; exit 1; }
    sleep 0.1
  done
  echo "timed out waiting for $1" >&2; cat "$1"; exit 1
}

echo "Starting moto's SNS/SQS server on a free port."
python -c '
import logging, threading
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print("moto listening on port %d" % server.get_host_and_port()[1], flush=True)
threading.Event().wait()
' >"$RUN/moto.log" 2>&1 &
PIDS+=($!)
wait_for "$RUN/moto.log" "listening" "${PIDS[-1]}"
MOTO="http://127.0.0.1:$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$RUN/moto.log")"
export AWS_ENDPOINT_URL_SNS="$MOTO" AWS_ENDPOINT_URL_SQS="$MOTO"

echo "Starting the local SMS simulator on 127.0.0.1:$PORT (20 MPS, 80 ms latency, delivery events)."
campaign simulator --port "$PORT" --mps 20 --latency-ms 80 --jitter-ms 40 \
  --opt-out +13125550187 --log "$RUN/simulator.jsonl" \
  --undelivered-share 0.1 --event-delay-ms 400 --duplicate-share 0.1 --reorder-share 0.1 \
  --price-per-part US=0.00581 --price-per-part CA=0.00736 --price-per-part GB=0.0365 \
  --price-per-part AU=0.0341 --carrier-fee-per-part 0.00302 \
  2>"$RUN/simulator.log" &
PIDS+=($!)
wait_for "$RUN/simulator.log" "listening" "${PIDS[-1]}"

printf '\n\033[1m== 1. Set up delivery events: SNS topic, SQS queue, configuration set, event destination\033[0m\n'
echo '$ campaign events setup --configuration-set demo-events'
QUEUE_URL=$(campaign events setup --configuration-set demo-events)
step "2. Create the campaign (every option checked against the API's limits)" \
  campaign create spring-sale --origination-identity +12065550100 \
  --message-file samples/message.txt --max-price 0.05 --context team=growth \
  --configuration-set demo-events \
  --no-window  # promotional texts wait for daytime where each recipient is; the demo runs at any hour
step "3. Import the recipients (normalized to E.164; bad rows kept with their reason)" \
  campaign import spring-sale samples/recipients.csv --default-region US --country-column country
step "4. Estimate cost and time, offline" \
  campaign estimate spring-sale --prices samples/prices.csv --mps 5
step "5. Ask the API to validate a sample (DryRun: nothing delivered, nothing charged)" \
  campaign send spring-sale --dry-run --sample 8
step "6. Send for real, paced at 5 parts per second" \
  campaign send spring-sale --mps 5 --prices samples/prices.csv --yes
sleep 2  # the last delivery events are still on their way (the simulator delays them, like AWS)
step "7. Read the delivery events from the SQS queue (duplicates and reordering included)" \
  campaign events ingest --queue-url "$QUEUE_URL" --until-empty
step "8. Status: delivered, undelivered, and what AWS charged beside the estimate" \
  campaign status spring-sale --prices samples/prices.csv
step "9. Report: one row per input row" \
  campaign report spring-sale --output "$RUN/report.csv"
step "10. The HTML report to show someone else (opens offline; charts also as PNGs)" \
  campaign report spring-sale --html "$RUN/report.html" --png "$RUN/charts" --prices samples/prices.csv
echo
echo "Report: $RUN/report.csv   Ledger: $RUN/campaign.db   Simulator log: $RUN/simulator.jsonl"
echo "Run 'make demo' again any time; it starts from scratch."
echo "HTML report: $(pwd)/$RUN/report.html"
