#!/usr/bin/env bash
# A backend killed under load: two echo backends in one pool (active health
# checks and passive ejection on), the release gateway in front, wrk for
# DURATION seconds, and `kill -9` of one backend KILL_AFTER seconds in.
# Prints wrk's summary (requests, non-2xx and socket errors, latency
# percentiles) and the gateway's per-backend counters. With --baseline it
# first runs the same load without a kill, for comparison.
#
#   scripts/bench-backend-kill.sh [--duration S] [--kill-after S] [--conns C] [--workers W] [--baseline]
#
# Needs wrk (Debian package wrk) and curl.
set -euo pipefail
DUR=10; KILL_AFTER=3; CONNS=32; WORKERS=1; BASELINE=0
while [ $# -gt 0 ]; do case "$1" in
  --duration) DUR=$2; shift 2;; --kill-after) KILL_AFTER=$2; shift 2;;
  --conns) CONNS=$2; shift 2;; --workers) WORKERS=$2; shift 2;; --baseline) BASELINE=1; shift;;
  *) echo "unknown arg $1" >&2; exit 2;; esac; done
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet --bin tenant-gateway --example echo_backend
BIN=$PWD/target/release/tenant-gateway
ECHO=$PWD/target/release/examples/echo_backend
WORK=$(mktemp -d /tmp/tg-kill.XXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
A_PORT=28180; B_PORT=28181; GW_PORT=28182; ADMIN_PORT=28183

"$ECHO" --listen 127.0.0.1:$A_PORT --name a >/dev/null & PIDS+=($!)
"$ECHO" --listen 127.0.0.1:$B_PORT --name b >/dev/null & B=$!; PIDS+=($B)
cat > "$WORK/gateway.yaml" <<YAML
pools:
  default:
    backends: ["http://127.0.0.1:$A_PORT", "http://127.0.0.1:$B_PORT"]
    health_check: {path: /healthz, interval: 500ms, timeout: 250ms, healthy_threshold: 2, unhealthy_threshold: 2}
    outlier: {consecutive_failures: 3, ejection: 10s}
    retries: {attempts: 2, budget_percent: 20}
tenants:
  - {id: acme, domains: [acme.test]}
YAML
"$BIN" serve --config "$WORK/gateway.yaml" --listen 127.0.0.1:$GW_PORT \
  --admin-listen 127.0.0.1:$ADMIN_PORT --data "$WORK/gw.db" --workers "$WORKERS" \
  --no-access-log >"$WORK/gw.out" 2>"$WORK/gw.err" & PIDS+=($!)
until curl -s -o /dev/null -H 'Host: acme.test' "http://127.0.0.1:$GW_PORT/" 2>/dev/null; do sleep 0.02; done
for port in $A_PORT $B_PORT; do
  until curl -s -o /dev/null "http://127.0.0.1:$port/"; do sleep 0.02; done
done

run_wrk() { wrk -t1 -c"$CONNS" -d"${DUR}s" --latency -H 'Host: acme.test' "http://127.0.0.1:$GW_PORT/"; }
summary() {
  awk '/requests in/ {req=$1} /Non-2xx/ {non2xx=$NF} /Socket errors/ {sock=$0}
       $1=="50%" {p50=$2} $1=="99%" {p99=$2} /Requests\/sec/ {rps=$2}
       END {printf "requests=%s req_per_s=%s non_2xx=%s p50=%s p99=%s %s\n",
            req, rps, (non2xx == "" ? 0 : non2xx), p50, p99, (sock == "" ? "socket_errors=0" : sock)}'
}

if [ "$BASELINE" = 1 ]; then
  echo "== baseline: no kill, ${DUR}s, $CONNS connections"
  run_wrk | summary
fi

echo "== kill -9 backend b after ${KILL_AFTER}s of ${DUR}s, $CONNS connections, $WORKERS worker(s)"
( sleep "$KILL_AFTER"; kill -9 "$B" ) &
out=$(run_wrk)
echo "$out"
echo "$out" | summary
echo "== gateway counters"
curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" |
  grep -E '^tenant_gateway_(backend_(requests|errors|ejections)_total|backend_healthy|pool_retries_total|requests_total)' | grep -v ' 0$' || true
grep -E 'ejected|health checks' "$WORK/gw.err" || true
