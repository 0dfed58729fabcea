#!/usr/bin/env bash
# A 3-node cluster for ../shared/bench/compare.sh (its --start command): 3 etcd members and 3 Warren
# nodes on 127.0.1.71-73 (etcd on 127.0.1.81-83; WARREN_BENCH_NET=127.0.4 moves them to
# 127.0.4.x), node 1 started first so that it leads; the AMQP URL to measure is node 1's. Runs in
# the foreground until SIGTERM/SIGINT, then stops what it started (Warren first, then etcd) and
# removes its data.
#
#   scripts/bench-cluster.sh AMQP_PORT [extra warren flags...]
#   ../shared/bench/compare.sh ref:rabbitmq:5690 warren=amqp://guest:guest@127.0.0.1:5699 \
#     cluster=amqp://guest:guest@127.0.1.71:5698 --start "warren=exec $PWD/bin/warren --port 5699 …" \
#     --start "cluster=exec $PWD/scripts/bench-cluster.sh 5698" --scenarios S3
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${1:?usage: bench-cluster.sh AMQP_PORT [warren flags...]}
shift
NET=${WARREN_BENCH_NET:-127.0.1}
[[ "$NET" =~ ^127\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || { echo "bench-cluster.sh: WARREN_BENCH_NET must look like 127.0.1 (got '$NET')" >&2; exit 2; }
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
cluster="e1=http://$NET.81:$((BASE + 1)),e2=http://$NET.82:$((BASE + 1)),e3=http://$NET.83:$((BASE + 1))"
for i in 1 2 3; do
  etcd --name "e$i" --data-dir "$DATA/etcd$i" \
    --listen-client-urls "http://$NET.8$i:$BASE" --advertise-client-urls "http://$NET.8$i:$BASE" \
    --listen-peer-urls "http://$NET.8$i:$((BASE + 1))" --initial-advertise-peer-urls "http://$NET.8$i:$((BASE + 1))" \
    --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "bench-$$" \
    --heartbeat-interval 250 --election-timeout 2500 --log-level error >"$DATA/etcd$i.log" 2>&1 &
  pids+=($!)
done
endpoints="http://$NET.81:$BASE,http://$NET.82:$BASE,http://$NET.83:$BASE"
start_node() {
  local n=$1
  shift
  ./bin/warren --cluster --bind "$NET.7$n" --port "$PORT" --management-port 0 --prometheus-port 0 \
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
