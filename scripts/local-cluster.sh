#!/usr/bin/env bash
# A 3-node Warren cluster on this machine, for trying it out (npm run cluster:local): 3 etcd members
# and 3 Warren nodes on the loopback addresses 127.0.0.11-13 (etcd on 127.0.0.21-23), data under
# ./cluster-data (or $CLUSTER_DATA). Ctrl-C stops everything it started. Needs etcd (Debian:
# etcd-server) and a built Warren (npm ci).
#
#   AMQP        amqp://guest:guest@127.0.0.11:5672/  (and .12, .13: followers forward to the leader)
#   management  http://127.0.0.11:15672/             (and .12, .13)
#   status      WARREN_MANAGEMENT_URL=http://127.0.0.11:15672 bin/warrenctl cluster_status
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${CLUSTER_DATA:-./cluster-data}
command -v etcd >/dev/null || { echo "local-cluster: etcd not found: install etcd-server (Debian/Ubuntu) or put etcd on PATH" >&2; exit 1; }
[ -f dist/src/cli/warren-main.js ] || { echo "local-cluster: Warren is not built: run npm ci first" >&2; exit 1; }
mkdir -p "$DATA"

pids=()
stopping=0
cleanup() {
  trap - INT TERM EXIT
  stopping=1
  echo "local-cluster: stopping"
  # Warren nodes first (a leader hands over on SIGTERM), then etcd.
  for pid in "${pids[@]:3}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]:3}"; do wait "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]:0:3}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

cluster="e1=http://127.0.0.21:2380,e2=http://127.0.0.22:2380,e3=http://127.0.0.23:2380"
for i in 1 2 3; do
  etcd --name "e$i" --data-dir "$DATA/etcd$i" \
    --listen-client-urls "http://127.0.0.2$i:2379" --advertise-client-urls "http://127.0.0.2$i:2379" \
    --listen-peer-urls "http://127.0.0.2$i:2380" --initial-advertise-peer-urls "http://127.0.0.2$i:2380" \
    --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token warren-local \
    --log-level warn >"$DATA/etcd$i.log" 2>&1 &
  pids+=($!)
done
endpoints="http://127.0.0.21:2379,http://127.0.0.22:2379,http://127.0.0.23:2379"

for i in 1 2 3; do
  ./bin/warren --cluster --bind "127.0.0.1$i" --management-bind "127.0.0.1$i" \
    --etcd-endpoints "$endpoints" --cluster-advertise "127.0.0.1$i:5679" \
    --data-dir "$DATA/node$i" "$@" >"$DATA/node$i.log" 2>&1 &
  pids+=($!)
done

echo "local-cluster: etcd on 127.0.0.21-23:2379, Warren on 127.0.0.11-13 (AMQP 5672, management 15672); logs in $DATA"
echo "local-cluster: WARREN_MANAGEMENT_URL=http://127.0.0.11:15672 bin/warrenctl cluster_status"
wait -n "${pids[@]}" || true
# Reached after Ctrl-C too (the trap has stopped everything by then): only a lone exit is news.
[ "$stopping" = 1 ] || echo "local-cluster: a process exited; see the logs in $DATA" >&2
