#!/usr/bin/env bash
# Stream load, Warren against RabbitMQ 3.10, measured the same way on both (issue 13's targets):
#   publish  one producer, publisher confirms (window 1000), 16-byte messages: confirmed msg/s
#   replay   1,000,000 messages published, then one consumer reads them all from "first"
#   fanout   ten consumers on one stream vs ten queues behind a fanout exchange: deliveries/s and
#            the broker's CPU per delivery
# Each round runs every scenario on Warren then on RabbitMQ, both started fresh for the run.
#
#   test/bench/streams.sh [ROUNDS]        (needs: npm run build; Go and Debian's amqp091-go, as
#                                          ../shared/bench/build.sh installs them)
# Ports: Warren $WARREN_PORT (default 5771), RabbitMQ $RABBIT_PORT (default 5770; management
# +10000): set them when others run benchmarks on the same machine. Prints one JSON line per run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
rounds=${1:-1}
wport=${WARREN_PORT:-5771}
rport=${RABBIT_PORT:-5770}
# The reference broker script sits in shared/tools beside the repository (or beside a worktree's parent).
ref=${REFERENCE_BROKER:-}
for d in "$repo/.." "$repo/../.."; do
  [ -z "$ref" ] && [ -x "$d/shared/tools/reference-broker.sh" ] && ref=$(cd "$d/shared/tools" && pwd)/reference-broker.sh
done
[ -n "$ref" ] || { echo "no shared/tools/reference-broker.sh found: set REFERENCE_BROKER to its path" >&2; exit 1; }
bin=$(mktemp -d)/streambench
(cd "$here/streambench" && GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= go build -trimpath -o "$bin" .)

warren_pid=""
start_warren() {
  data=$(mktemp -d)
  node "$repo/bin/warren" --port "$wport" --management-port 0 --prometheus-port 0 --data-dir "$data" --log-level warn >/dev/null 2>&1 &
  warren_pid=$!
  for _ in $(seq 1 50); do (echo >/dev/tcp/127.0.0.1/$wport) 2>/dev/null && return 0; sleep 0.2; done
  echo "warren did not start" >&2; exit 1
}
stop_warren() { kill "$warren_pid" 2>/dev/null; wait "$warren_pid" 2>/dev/null || true; }
rabbit_pid() { ss -ltnp 2>/dev/null | awk -v a="127.0.0.1:$rport" '$4 == a' | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; }

run() { # label url pid mode args...
  local label=$1 url=$2 pid=$3 mode=$4; shift 4
  "$bin" -mode "$mode" -uri "$url" -pid "$pid" -label "$label" "$@"
}

trap 'stop_warren; "$ref" stop rabbitmq "$rport" >/dev/null 2>&1 || true' EXIT
for round in $(seq 1 "$rounds"); do
  for scenario in "publish -duration 15s" "replay -count 1000000" "fanout -readers 10 -duration 15s" "fanout -readers 10 -queues -duration 15s"; do
    # shellcheck disable=SC2086
    { start_warren; run "warren r$round" amqp://guest:guest@127.0.0.1:$wport/ "$warren_pid" $scenario; stop_warren; }
    "$ref" start rabbitmq "$rport" >/dev/null
    # shellcheck disable=SC2086
    run "rabbitmq r$round" amqp://guest:guest@127.0.0.1:$rport/ "$(rabbit_pid)" $scenario
    "$ref" stop rabbitmq "$rport" >/dev/null
  done
done
