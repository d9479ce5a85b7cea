#!/usr/bin/env bash
# The example Django + django-tenants site, measured four ways in one run,
# with the same gunicorn workers on the same throwaway PostgreSQL:
#   direct:  django-tenants' TenantMainMiddleware (a domain-table lookup and
#            SET search_path per request)
#   gateway: tenant-gateway in front (--store-layout django-tenants, reading
#            the site's own tables) and TenantGatewayMiddleware, which takes
#            the schema from X-Tenant-Schema
#   signed:  the same with signed tenant headers (headers.signing in the
#            gateway, SIGNING_KEYS in the package)
#   bound:   the gateway's app reached directly, the client setting
#            X-Tenant-ID / X-Tenant-Schema itself: the most any header-routing
#            front can give on this machine
# Rounds alternate (direct, gateway, signed, bound, direct, ...) so that a
# drift of the machine touches every target alike; the medians are printed
# with their ratios to direct and to the bound. Requests rotate over the
# tenants' hosts.
#
#   scripts/bench-django.sh [--workers W] [--worker-class sync|gthread] [--conns C]
#                           [--duration S] [--rounds R] [--path P]
#
# Sync workers close every connection, so the gateway connects upstream once
# per request; gthread workers keep connections alive (see docs/django.md).
# Needs wrk (Debian package wrk), PostgreSQL's server binaries and python3
# (the virtualenv is made by scripts/python-venv.sh).
set -euo pipefail
WORKERS=2; CLASS=sync; CONNS=16; DUR=5; ROUNDS=3; URLPATH=/notes/
while [ $# -gt 0 ]; do case "$1" in
  --workers) WORKERS=$2; shift 2;; --worker-class) CLASS=$2; shift 2;; --conns) CONNS=$2; shift 2;; --duration) DUR=$2; shift 2;;
  --rounds) ROUNDS=$2; shift 2;; --path) URLPATH=$2; shift 2;;
  *) echo "unknown arg $1" >&2; exit 2;; esac; done
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -x "$PGBIN/initdb" ] || { echo "PostgreSQL is needed: apt-get install postgresql" >&2; exit 1; }
./scripts/python-venv.sh
PY=$PWD/.venv-test/bin/python
cargo build --release --quiet --bin tenant-gateway
BIN=$PWD/target/release/tenant-gateway

WORK=$(mktemp -d /tmp/tg-django.XXXX)
PIDS=()
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done
  as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] && chown postgres "$WORK"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PG_PORT=$(free_port)
as_pg "$PGBIN/initdb" -D "$WORK/pg" -U postgres -A trust --no-sync >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -w -l "$WORK/pg.log" \
  -o "-p $PG_PORT -k $WORK -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off" start >/dev/null
DB=postgres://postgres@127.0.0.1:$PG_PORT/site
as_pg "$PGBIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE DATABASE site"
export TGW_EXAMPLE_DATABASE=$DB
(cd integrations/django/example && "$PY" manage.py migrate_schemas --shared --noinput >/dev/null \
  && "$PY" manage.py create_example_tenants >/dev/null)

SECRET=bench-signing-secret-of-at-least-32-bytes
# gunicorn turns sync workers with --threads > 1 into gthread ones.
THREADS=1; [ "$CLASS" = gthread ] && THREADS=4
gunicorn() { # port middleware [signing keys]
  TGW_EXAMPLE_MIDDLEWARE=$2 TGW_EXAMPLE_SIGNING_KEYS=${3:-} "$PY" -m gunicorn --workers "$WORKERS" \
    --worker-class "$CLASS" --threads "$THREADS" --bind "127.0.0.1:$1" --chdir integrations/django/example \
    --error-logfile "$WORK/gunicorn-$1.log" example_site.wsgi:application &
  PIDS+=($!)
}
gateway() { # port admin-port app-port config
  "$BIN" serve --listen "127.0.0.1:$1" --admin-listen "127.0.0.1:$2" --config "$4" \
    --store "$DB" --store-layout django-tenants --default-backend "http://127.0.0.1:$3" \
    --workers 1 --no-access-log >"$WORK/gw-$1.out" 2>"$WORK/gw-$1.err" &
  PIDS+=($!)
}
DIRECT_PORT=$(free_port); APP_PORT=$(free_port); SIGNED_APP_PORT=$(free_port)
GW_PORT=$(free_port); ADMIN_PORT=$(free_port); SIGNED_PORT=$(free_port); SIGNED_ADMIN_PORT=$(free_port)
printf 'headers: {}\n' >"$WORK/plain.yaml"
printf 'headers:\n  signing:\n    keys:\n      - {id: k1, secret: "%s"}\n' "$SECRET" >"$WORK/signed.yaml"
gunicorn "$DIRECT_PORT" django-tenants
gunicorn "$APP_PORT" gateway
gunicorn "$SIGNED_APP_PORT" gateway "k1=$SECRET"
gateway "$GW_PORT" "$ADMIN_PORT" "$APP_PORT" "$WORK/plain.yaml"
gateway "$SIGNED_PORT" "$SIGNED_ADMIN_PORT" "$SIGNED_APP_PORT" "$WORK/signed.yaml"

wait_ok() { # url host
  for _ in $(seq 1 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $2" "$1$URLPATH" || true)" = 200 ] && return 0
    sleep 0.1
  done
  echo "no 200 from $1 for $2" >&2; tail -n 20 "$WORK"/*.log "$WORK"/gw-*.err >&2; exit 1
}
wait_ok "http://127.0.0.1:$DIRECT_PORT" acme.test
wait_ok "http://127.0.0.1:$GW_PORT" acme.test
wait_ok "http://127.0.0.1:$SIGNED_PORT" acme.test
# Every way answers the same for each tenant (its own schema and notes).
for host in acme.test globex.test; do
  a=$(curl -s -H "Host: $host" "http://127.0.0.1:$DIRECT_PORT$URLPATH")
  for port in "$GW_PORT" "$SIGNED_PORT"; do
    b=$(curl -s -H "Host: $host" "http://127.0.0.1:$port$URLPATH")
    [ "$a" = "$b" ] || { echo "answers differ for $host on $port: $a vs $b" >&2; exit 1; }
  done
  t=${host%.test}
  b=$(curl -s -H "Host: $host" -H "X-Tenant-ID: $t" -H "X-Tenant-Schema: $t" "http://127.0.0.1:$APP_PORT$URLPATH")
  [ "$a" = "$b" ] || { echo "the bound answers differently for $host: $a vs $b" >&2; exit 1; }
done

cat >"$WORK/hosts.lua" <<'LUA'
local hosts = {"acme.test", "globex.test"}
local i = 0
request = function()
  i = i % #hosts + 1
  wrk.headers["Host"] = hosts[i]
  return wrk.format("GET", nil)
end
LUA
# The bound: the client names the tenant itself, as the gateway would.
cat >"$WORK/bound.lua" <<'LUA'
local tenants = {"acme", "globex"}
local i = 0
request = function()
  i = i % #tenants + 1
  wrk.headers["Host"] = tenants[i] .. ".test"
  wrk.headers["X-Tenant-ID"] = tenants[i]
  wrk.headers["X-Tenant-Schema"] = tenants[i]
  return wrk.format("GET", nil)
end
LUA
run() { # url lua -> "rps p99"
  local out; out=$(wrk -t1 -c"$CONNS" -d"${DUR}s" --latency -s "$2" "$1$URLPATH")
  if echo "$out" | grep -q "Non-2xx"; then echo "$out" >&2; echo "errors in the run" >&2; exit 1; fi
  echo "$(echo "$out" | awk '/Requests\/sec/ {print $2}') $(echo "$out" | awk '$1=="99%" {print $2}')"
}
declare -a D G S B
for r in $(seq 1 "$ROUNDS"); do
  d=$(run "http://127.0.0.1:$DIRECT_PORT" "$WORK/hosts.lua")
  g=$(run "http://127.0.0.1:$GW_PORT" "$WORK/hosts.lua")
  s=$(run "http://127.0.0.1:$SIGNED_PORT" "$WORK/hosts.lua")
  b=$(run "http://127.0.0.1:$APP_PORT" "$WORK/bound.lua")
  D+=("${d%% *}"); G+=("${g%% *}"); S+=("${s%% *}"); B+=("${b%% *}")
  printf "round %s: direct %s (p99 %s), gateway %s (p99 %s), signed %s (p99 %s), bound %s (p99 %s) req/s\n" \
    "$r" "${d%% *}" "${d##* }" "${g%% *}" "${g##* }" "${s%% *}" "${s##* }" "${b%% *}" "${b##* }"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
md=$(median "${D[@]}"); mg=$(median "${G[@]}"); ms=$(median "${S[@]}"); mb=$(median "${B[@]}")
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
printf "gunicorn workers=%s class=%s conns=%s path=%s\n" "$WORKERS" "$CLASS" "$CONNS" "$URLPATH"
printf "median req/s: django-tenants lookup %s, gateway %s, gateway signed %s, bound %s\n" "$md" "$mg" "$ms" "$mb"
printf "vs lookup: gateway %sx, signed %sx, bound %sx; of the bound: gateway %s, signed %s\n" \
  "$(ratio "$mg" "$md")" "$(ratio "$ms" "$md")" "$(ratio "$mb" "$md")" "$(ratio "$mg" "$mb")" "$(ratio "$ms" "$mb")"
