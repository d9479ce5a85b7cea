#!/usr/bin/env bash
# The lean HTTP/1.1 path against hyper's, nginx and HAProxy, side by side in
# one ../shared/bench/peers.sh run (release build), then the CPU each gateway
# spends per request, read from /proc under the same wrk load.
#
#   scripts/bench-http1.sh [--workers W] [--rounds R] [--duration S] [--domains N]
#
# The lean gateway is peers.sh's "gateway"; hyper's is the extra target
# "hyper". SKIP_BUILD=1 uses the release binary as it is. Needs nginx,
# haproxy and wrk (Debian packages nginx-light haproxy wrk).
set -euo pipefail
WORKERS=1; ROUNDS=3; DUR=8; N=1000
while [ $# -gt 0 ]; do case "$1" in
  --workers) WORKERS=$2; shift 2;; --rounds) ROUNDS=$2; shift 2;;
  --duration) DUR=$2; shift 2;; --domains) N=$2; shift 2;;
  *) echo "unknown arg $1" >&2; exit 2;; esac; done
cd "$(dirname "$0")/.."
PEERS=${PEERS:-}
for p in ../shared/bench/peers.sh ../../shared/bench/peers.sh /work/shared/bench/peers.sh; do
  [ -z "$PEERS" ] && [ -x "$p" ] && PEERS=$(cd "$(dirname "$p")" && pwd)/peers.sh
done
[ -n "$PEERS" ] || { echo "peers.sh not found (set PEERS=)" >&2; exit 1; }
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet --bin tenant-gateway
BIN=$PWD/target/release/tenant-gateway
WORK=$(mktemp -d /tmp/tg-http1.XXXX); export WORK BIN WORKERS
trap 'rm -rf "$WORK"' EXIT

# A gateway's user and kernel CPU time (clock ticks) and the requests it served.
snapshot() {
  awk '{print $14, $15}' "/proc/$1/stat" | tr '\n' ' '
  curl -s "http://127.0.0.1:$2/metrics" | awk '/^tenant_gateway_requests_total/ {n += $2} END {print n + 0}'
}
export -f snapshot

# Both gateways, from the domains peers.sh generates (its $WORK is ours).
GATEWAY_CMD='
awk -F"\t" "BEGIN {print \"id,schema,domain\"} {print \$2\",\"\$3\",\"\$1}" "$WORK/domains.tsv" > "$WORK/tenants.csv"
port=18091
for engine in lean hyper; do
  "$BIN" tenants import "$WORK/tenants.csv" --data "$WORK/$engine.db" >/dev/null
  printf "data_path:\n  http1: %s\n" "$engine" > "$WORK/$engine.yaml"
  "$BIN" serve --config "$WORK/$engine.yaml" --listen 127.0.0.1:$port --admin-listen 127.0.0.1:$((port + 1000)) \
    --data "$WORK/$engine.db" --default-backend http://127.0.0.1:18080 --workers "$WORKERS" --no-access-log &
  pid=$!; echo $pid > "$WORK/$engine.pid"
  # Once it answers: its CPU time and request count so far (the baseline).
  ( until curl -sf -o /dev/null "http://127.0.0.1:$((port + 1000))/readyz"; do sleep 0.1; done
    snapshot "$pid" $((port + 1000)) > "$WORK/$engine.before" ) &
  port=$((port + 1))
done
wait'
export GATEWAY_CMD
# The peers' CPU time (clock ticks, their processes and children summed),
# sampled while they run: peers.sh stops them when it ends.
peer_ticks() { # pgrep pattern
  local pids; pids=$(pgrep -f "$1" || true)
  for p in $pids; do pids="$pids $(pgrep -P "$p" || true)"; done
  for p in $pids; do awk '{print $14, $15}' "/proc/$p/stat" 2>/dev/null; done |
    awk '{u += $1; s += $2} END {printf "%d:%d", u, s}'
}
( while sleep 0.5; do
    echo "$(peer_ticks "$WORK/nx.conf") $(peer_ticks "haproxy -f $WORK/hap.cfg")" > "$WORK/peers.cpu.tmp"
    mv "$WORK/peers.cpu.tmp" "$WORK/peers.cpu"
  done ) &
SAMPLER=$!
echo "# peers.sh, $WORKERS worker(s), $ROUNDS rounds of ${DUR}s; gateway = lean, hyper = hyper"
"$PEERS" --domains "$N" --rounds "$ROUNDS" --duration "$DUR" --workers "$WORKERS" \
  --gateway-port 18091 --extra hyper:18092 | tee "$WORK/peers.out"
kill "$SAMPLER" 2>/dev/null || true

# CPU per request over the whole run, from /proc (user and kernel µs).
TICK=$(getconf CLK_TCK)
port=18091
for engine in lean hyper; do
  pid=$(cat "$WORK/$engine.pid")
  read -r u0 s0 n0 < "$WORK/$engine.before"
  read -r u1 s1 n1 < <(snapshot "$pid" $((port + 1000)))
  kill "$pid" 2>/dev/null || true
  awk -v e="$engine" -v u="$((u1 - u0))" -v s="$((s1 - s0))" -v n="$((n1 - n0))" -v t="$TICK" \
    'BEGIN {printf "cpu: %-5s %8d requests  user %.2f us/request  kernel %.2f us/request\n", e, n, u / t * 1e6 / n, s / t * 1e6 / n}'
  port=$((port + 1))
done
# nginx and HAProxy over their whole life (start-up included), per request
# wrk counted (req/s x duration, summed over rounds).
if [ -s "$WORK/peers.cpu" ]; then
  read -r nx hap < "$WORK/peers.cpu"
  for peer in nginx:$nx haproxy:$hap; do
    name=${peer%%:*}; ticks=${peer#*:}; user=${ticks%%:*}; kernel=${ticks##*:}
    n=$(awk -v t="$name" -v d="$DUR" '$1 == t && $2 ~ /^[0-9]+$/ {n += $3 * d} END {printf "%d", n}' "$WORK/peers.out")
    [ "$n" -gt 0 ] && awk -v e="$name" -v u="$user" -v s="$kernel" -v n="$n" -v t="$TICK" \
      'BEGIN {printf "cpu: %-7s %8d requests  user %.2f us/request  kernel %.2f us/request (whole life)\n", e, n, u / t * 1e6 / n, s / t * 1e6 / n}'
  done
fi
