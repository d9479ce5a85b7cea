#!/usr/bin/env bash
# HTTPS on loopback, the gateway against nginx with the same certificate, both
# terminating TLS in front of the same backend (nginx returning 200):
#   - new TLS handshakes per second (wrk with "Connection: close": one full
#     handshake per request, no keep-alive)
#   - keep-alive HTTPS requests per second
#
#   scripts/bench-tls.sh [--duration S] [--conns C] [--workers W]
#
# Needs wrk, nginx and openssl (Debian packages wrk, nginx-light, openssl).
set -euo pipefail
DUR=10; CONNS=64; WORKERS=1
while [ $# -gt 0 ]; do case "$1" in
  --duration) DUR=$2; shift 2;; --conns) CONNS=$2; shift 2;; --workers) WORKERS=$2; shift 2;;
  *) echo "unknown arg $1" >&2; exit 2;; esac; done
cd "$(dirname "$0")/.."
for tool in wrk nginx openssl; do
  command -v $tool >/dev/null || { echo "$tool is needed" >&2; exit 1; }
done
cargo build --release --quiet --bin tenant-gateway
BIN=$PWD/target/release/tenant-gateway
WORK=$(mktemp -d /tmp/tg-bench-tls.XXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; [ -n "${KEEP:-}" ] || rm -rf "$WORK"; }
trap cleanup EXIT
BE_PORT=28180; GW_PORT=28181; GW_TLS=28443; ADMIN_PORT=29191; NGX_TLS=28444
HOST=bench.example.test

# One ECDSA P-256 certificate for both servers.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=$HOST" -addext "subjectAltName=DNS:$HOST" \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null

mkdir -p "$WORK/ngx"
cat > "$WORK/ngx.conf" <<CONF
worker_processes $WORKERS; daemon off; pid $WORK/ngx/pid; error_log $WORK/ngx/err.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  upstream be { server 127.0.0.1:$BE_PORT; keepalive 64; }
  server { listen 127.0.0.1:$BE_PORT reuseport backlog=4096; location / { return 200 "hello from backend\n"; } }
  server { listen 127.0.0.1:$NGX_TLS ssl reuseport backlog=4096;
    ssl_certificate $WORK/cert.pem; ssl_certificate_key $WORK/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache off; ssl_session_tickets off;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
nginx -c "$WORK/ngx.conf" -p "$WORK/ngx" & PIDS+=($!)

cat > "$WORK/gw.yaml" <<CONF
tls:
  listen: 127.0.0.1:$GW_TLS
  certificates: [{cert: $WORK/cert.pem, key: $WORK/key.pem}]
tenants:
  - {id: bench, domains: [$HOST]}
CONF
"$BIN" serve --config "$WORK/gw.yaml" --listen 127.0.0.1:$GW_PORT --admin-listen 127.0.0.1:$ADMIN_PORT \
  --data "$WORK/gw.db" --default-backend http://127.0.0.1:$BE_PORT --workers "$WORKERS" --no-access-log \
  >"$WORK/gw.out" 2>"$WORK/gw.err" & PIDS+=($!)
resolve="--resolve $HOST:$GW_TLS:127.0.0.1 --resolve $HOST:$NGX_TLS:127.0.0.1"
for port in $GW_TLS $NGX_TLS; do
  for _ in $(seq 200); do
    curl -sk $resolve -o /dev/null "https://$HOST:$port/" && break; sleep 0.05
  done
  code=$(curl -sk $resolve -o /dev/null -w '%{http_code}' "https://$HOST:$port/")
  [ "$code" = 200 ] || { echo "port $port answered $code" >&2; cat "$WORK/gw.err" >&2; exit 1; }
done

# wrk connects by IP (so no usable SNI name): both servers answer with their
# one (default) certificate; the Host header picks the tenant.
run() { # name url extra-args...
  local name=$1 url=$2; shift 2
  local out; out=$(wrk -t1 -c"$CONNS" -d"${DUR}s" -H "Host: $HOST" "$@" "$url")
  printf "%-28s %10s req/s  %s\n" "$name" "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
    "$(echo "$out" | awk '/Non-2xx|Socket errors/ {printf "%s ", $0}')"
}
echo "workers=$WORKERS conns=$CONNS duration=${DUR}s cert=ECDSA P-256"
run "gateway keep-alive"        "https://127.0.0.1:$GW_TLS/"
run "nginx keep-alive"          "https://127.0.0.1:$NGX_TLS/"
run "gateway new handshakes"    "https://127.0.0.1:$GW_TLS/" -H "Connection: close"
run "nginx new handshakes"      "https://127.0.0.1:$NGX_TLS/" -H "Connection: close"
