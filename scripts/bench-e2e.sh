#!/usr/bin/env bash
# End-to-end load test on loopback: a backend (nginx if installed, else the
# echo example), the gateway with N domains bulk-imported, and wrk rotating
# Host headers over the domains. Prints import time, start-up time (until
# the warm domain table holds every domain), the resident memory per domain
# once warm, req/s and p50/p99 latency.
#
#   scripts/bench-e2e.sh [--domains N] [--hosts H] [--duration S] [--conns C] [--workers W] [--warm-all] [--junk S] [--data FILE]
#
# --data FILE keeps the store file: imported there when it does not exist,
# reused (no import) when it does, so runs at 10M domains can follow one
# another without a 90 s import each (the file must hold the same N).
# --domains 10000000 works (about 2 GB of store file in /tmp; import ~1-2 min).
# --junk S then sends S seconds of random unknown Hosts at full speed and
# prints the RSS growth and the store lookups they caused (the warm table
# answers them itself: expect ~0). --duration 0 skips the req/s run.
# wrk rotates over H of the domains (default: N, at most 10,000); compare
# two --domains runs with the same --hosts to see the table size alone.
# --warm-all first requests every one of the N domains once, so the memory
# figure covers a cache holding all of them. Needs wrk (Debian package wrk).
set -euo pipefail
N=1000; HOSTS=0; DUR=10; CONNS=64; WORKERS=1; WARM_ALL=0; JUNK=0; DATA=
while [ $# -gt 0 ]; do case "$1" in
  --domains) N=$2; shift 2;; --hosts) HOSTS=$2; shift 2;; --duration) DUR=$2; shift 2;; --conns) CONNS=$2; shift 2;;
  --workers) WORKERS=$2; shift 2;; --warm-all) WARM_ALL=1; shift;; --junk) JUNK=$2; shift 2;;
  --data) DATA=$2; shift 2;;
  *) echo "unknown arg $1" >&2; exit 2;; esac; done
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet --bin tenant-gateway --example echo_backend
# GATEWAY_BIN: another build of the gateway to measure (e.g. main's, side by side).
BIN=${GATEWAY_BIN:-$PWD/target/release/tenant-gateway}
WORK=$(mktemp -d /tmp/tg-bench.XXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
BE_PORT=28080; GW_PORT=28081; ADMIN_PORT=29091

if command -v nginx >/dev/null; then
  mkdir -p "$WORK/be"
  cat > "$WORK/be.conf" <<CONF
worker_processes 1; daemon off; pid $WORK/be/pid; error_log $WORK/be/err.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$BE_PORT reuseport backlog=4096; location / { return 200 "hello from backend\n"; } } }
CONF
  nginx -c "$WORK/be.conf" -p "$WORK/be" & PIDS+=($!); BACKEND=nginx
else
  target/release/examples/echo_backend --listen 127.0.0.1:$BE_PORT >/dev/null & PIDS+=($!); BACKEND=echo_backend
fi

DB=${DATA:-$WORK/gw.db}
python3 - "$N" "$WORK" "$HOSTS" "$DB" <<'PY'
import os, sys
n, work, hosts, db = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
if not os.path.exists(db):  # a kept store file (--data) needs no CSV
    with open(f"{work}/tenants.csv", "w") as f:
        f.write("id,schema,domain\n")
        for i in range(n):
            f.write(f"tenant{i},t_{i},t{i}.example.test\n")
def lua(path, count):
    with open(path, "w") as f:
        f.write("local n = %d\nlocal i = 0\nrequest = function()\n  i = i %% n + 1\n" % count)
        f.write('  wrk.headers["Host"] = "t" .. (i - 1) .. ".example.test"\n  return wrk.format("GET", "/")\nend\n')
lua(f"{work}/hosts.lua", min(hosts, n) if hosts else min(n, 10000))
lua(f"{work}/all.lua", n)
with open(f"{work}/junk.lua", "w") as f:
    f.write('math.randomseed(os.time())\nrequest = function()\n')
    f.write('  wrk.headers["Host"] = string.format("j%x%x.junk%d.example", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff), math.random(0, 999))\n')
    f.write('  return wrk.format("GET", "/")\nend\n')
PY

t0=$(date +%s.%N)
if [ -e "$DB" ]; then IMPORT=reused; else
  "$BIN" tenants import "$WORK/tenants.csv" --data "$DB" >/dev/null; IMPORT=; fi
t1=$(date +%s.%N)
IMPORT=${IMPORT:-$(printf %.2f "$(echo "$t1 - $t0" | bc)")}
"$BIN" serve --listen 127.0.0.1:$GW_PORT --admin-listen 127.0.0.1:$ADMIN_PORT --data "$DB" \
  --default-backend http://127.0.0.1:$BE_PORT --workers "$WORKERS" --no-access-log >"$WORK/gw.out" 2>"$WORK/gw.err" & GW=$!; PIDS+=($GW)
# Ready = the routing cache holds the whole domain table (cache.warm).
until curl -sf -o /dev/null "http://127.0.0.1:$ADMIN_PORT/readyz" 2>/dev/null; do sleep 0.02; done
t2=$(date +%s.%N)
rss() { awk '/VmRSS/ {print $2}' "/proc/$GW/status"; }
metric() { curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | awk -v m="$1" '$1==m {print $2}'; }
RSS0=$(rss)
printf "domains=%s import_s=%s startup_to_warm_s=%.2f table_domains=%s\n" "$N" "$IMPORT" "$(echo "$t2 - $t1" | bc)" "$(metric tenant_gateway_domain_table_domains)"
# Whole process, warm, before any request (includes the ~25 MB the process
# needs with an empty table: compare two --domains runs for the slope).
printf "warm_rss_kib=%s warm_rss_bytes_per_domain=%s\n" "$RSS0" "$(( RSS0 * 1024 / N ))"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: t1.example.test' "http://127.0.0.1:$GW_PORT/")
[ "$code" = 200 ] || { echo "gateway answered $code for a registered host" >&2; cat "$WORK/gw.err" >&2; exit 1; }
if [ "$WARM_ALL" = 1 ]; then
  # Each host at least once: N requests at a few tens of thousands per second.
  secs=$(( N / 20000 + 2 ))
  wrk -t1 -c"$CONNS" -d"${secs}s" -s "$WORK/all.lua" "http://127.0.0.1:$GW_PORT/" >/dev/null
fi
if [ "$JUNK" -gt 0 ]; then
  L0=$(metric tenant_gateway_store_lookup_duration_seconds_count); J0=$(rss)
  jout=$(wrk -t1 -c"$CONNS" -d"${JUNK}s" -s "$WORK/junk.lua" "http://127.0.0.1:$GW_PORT/")
  L1=$(metric tenant_gateway_store_lookup_duration_seconds_count); J1=$(rss)
  printf "junk_s=%s junk_requests=%s junk_req_per_s=%s junk_rss_growth_kib=%s junk_store_lookups=%s\n" "$JUNK" \
    "$(echo "$jout" | awk '/requests in/ {print $1}')" "$(echo "$jout" | awk '/Requests\/sec/ {print $2}')" \
    "$(( J1 - J0 ))" "$(echo "${L1:-0} - ${L0:-0}" | bc)"
fi
[ "$DUR" -gt 0 ] || exit 0
out=$(wrk -t1 -c"$CONNS" -d"${DUR}s" --latency -s "$WORK/hosts.lua" "http://127.0.0.1:$GW_PORT/")
RSS1=$(rss)
cached=$(curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | awk '/^tenant_gateway_cache_entries / {print $2}')
rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
p50=$(echo "$out" | awk '$1=="50%" {print $2}'); p99=$(echo "$out" | awk '$1=="99%" {print $2}')
errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {printf "%s ", $0}')
printf "hosts=%s workers=%s conns=%s backend=%s\n" "${HOSTS:-auto}" "$WORKERS" "$CONNS" "$BACKEND"
printf "req_per_s=%s p50=%s p99=%s errors=%s\n" "$rps" "$p50" "$p99" "${errs:-0}"
# Resident memory per domain after the load (hot hosts in the per-worker tables too).
printf "rss_kib=%s cached_hosts=%s rss_bytes_per_domain=%s\n" "$RSS1" "$cached" "$(( RSS1 * 1024 / N ))"
