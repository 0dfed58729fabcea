#!/usr/bin/env bash
# A 3-node cluster for ../shared/bench/compare.sh (its --start command): 3 etcd members and 3 Warren
# nodes on 127.0.1.71-73 (etcd on 127.0.1.81-83), node 1 started first so that it leads; the AMQP
# URL to measure is node 1's. Runs in the foreground until SIGTERM/SIGINT, then stops what it
# started (Warren first, then etcd) and removes its data.
#
#   scripts/bench-cluster.sh AMQP_PORT [extra warren flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${1:?usage: bench-cluster.sh AMQP_PORT [warren flags...]}
shift
DATA=$(mktemp -d /tmp/warren-bench-cluster-XXXXXX)
BASE=$((23000 + PORT % 500))
pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]:3}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]:3}"; do wait "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]:0:3}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$DATA"
}
trap cleanup INT TERM EXIT
cluster="e1=http://127.0.1.81:$((BASE + 1)),e2=http://127.0.1.82:$((BASE + 1)),e3=http://127.0.1.83:$((BASE + 1))"
for i in 1 2 3; do
  etcd --name "e$i" --data-dir "$DATA/etcd$i" \
    --listen-client-urls "http://127.0.1.8$i:$BASE" --advertise-client-urls "http://127.0.1.8$i:$BASE" \
    --listen-peer-urls "http://127.0.1.8$i:$((BASE + 1))" --initial-advertise-peer-urls "http://127.0.1.8$i:$((BASE + 1))" \
    --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "bench-$$" \
    --heartbeat-interval 250 --election-timeout 2500 --log-level error >"$DATA/etcd$i.log" 2>&1 &
  pids+=($!)
done
endpoints="http://127.0.1.81:$BASE,http://127.0.1.82:$BASE,http://127.0.1.83:$BASE"
start_node() {
  local n=$1
  shift
  ./bin/warren --cluster --bind "127.0.1.7$n" --port "$PORT" --management-port 0 --prometheus-port 0 \
    --cluster-port $((BASE + 2)) --etcd-endpoints "$endpoints" --cluster-prefix "bench-$$" \
    --data-dir "$DATA/node$n" --log-level info "$@" >"$DATA/node$n.log" 2>&1 &
  pids+=($!)
}
start_node 1 "$@"
# Node 1 leads once it serves AMQP itself (followers would forward to it anyway).
for _ in $(seq 1 300); do grep -q '"msg":"leading"' "$DATA/node1.log" 2>/dev/null && break; sleep 0.1; done
start_node 2 "$@"
start_node 3 "$@"
wait -n "${pids[@]}" || true
