#!/usr/bin/env bash
# The example Django + django-tenants site, measured two ways in one run,
# with the same gunicorn workers on the same throwaway PostgreSQL:
#   direct:  django-tenants' TenantMainMiddleware (a domain-table lookup and
#            SET search_path per request)
#   gateway: tenant-gateway in front (--store-layout django-tenants, reading
#            the site's own tables) and TenantGatewayMiddleware, which takes
#            the schema from X-Tenant-Schema
# Rounds alternate (direct, gateway, direct, ...) and the medians are printed
# with their ratio. Requests rotate over the tenants' hosts.
#
#   scripts/bench-django.sh [--workers W] [--conns C] [--duration S] [--rounds R] [--path P]
#
# Needs wrk (Debian package wrk), PostgreSQL's server binaries and python3
# (the virtualenv is made by scripts/python-venv.sh).
set -euo pipefail
WORKERS=2; CONNS=16; DUR=5; ROUNDS=3; URLPATH=/notes/
while [ $# -gt 0 ]; do case "$1" in
  --workers) WORKERS=$2; shift 2;; --conns) CONNS=$2; shift 2;; --duration) DUR=$2; shift 2;;
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

gunicorn() { # port middleware
  TGW_EXAMPLE_MIDDLEWARE=$2 "$PY" -m gunicorn --workers "$WORKERS" --worker-class sync \
    --bind "127.0.0.1:$1" --chdir integrations/django/example --error-logfile "$WORK/gunicorn-$2.log" \
    example_site.wsgi:application &
  PIDS+=($!)
}
DIRECT_PORT=$(free_port); APP_PORT=$(free_port); GW_PORT=$(free_port); ADMIN_PORT=$(free_port)
gunicorn "$DIRECT_PORT" django-tenants
gunicorn "$APP_PORT" gateway
"$BIN" serve --listen "127.0.0.1:$GW_PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
  --store "$DB" --store-layout django-tenants --default-backend "http://127.0.0.1:$APP_PORT" \
  --workers 1 --no-access-log >"$WORK/gw.out" 2>"$WORK/gw.err" &
PIDS+=($!)

wait_ok() { # url host
  for _ in $(seq 1 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $2" "$1$URLPATH" || true)" = 200 ] && return 0
    sleep 0.1
  done
  echo "no 200 from $1 for $2" >&2; tail -n 20 "$WORK"/*.log "$WORK/gw.err" >&2; exit 1
}
wait_ok "http://127.0.0.1:$DIRECT_PORT" acme.test
wait_ok "http://127.0.0.1:$GW_PORT" acme.test
# Both ways answer the same for each tenant (its own schema and notes).
for host in acme.test globex.test; do
  a=$(curl -s -H "Host: $host" "http://127.0.0.1:$DIRECT_PORT$URLPATH")
  b=$(curl -s -H "Host: $host" "http://127.0.0.1:$GW_PORT$URLPATH")
  [ "$a" = "$b" ] || { echo "answers differ for $host: $a vs $b" >&2; exit 1; }
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
run() { # url -> "rps p99"
  local out; out=$(wrk -t1 -c"$CONNS" -d"${DUR}s" --latency -s "$WORK/hosts.lua" "$1$URLPATH")
  if echo "$out" | grep -q "Non-2xx"; then echo "$out" >&2; echo "errors in the run" >&2; exit 1; fi
  echo "$(echo "$out" | awk '/Requests\/sec/ {print $2}') $(echo "$out" | awk '$1=="99%" {print $2}')"
}
declare -a D G
for r in $(seq 1 "$ROUNDS"); do
  d=$(run "http://127.0.0.1:$DIRECT_PORT"); g=$(run "http://127.0.0.1:$GW_PORT")
  D+=("${d%% *}"); G+=("${g%% *}")
  printf "round %s: direct %s req/s (p99 %s), gateway %s req/s (p99 %s)\n" "$r" "${d%% *}" "${d##* }" "${g%% *}" "${g##* }"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
md=$(median "${D[@]}"); mg=$(median "${G[@]}")
printf "gunicorn workers=%s conns=%s path=%s\n" "$WORKERS" "$CONNS" "$URLPATH"
printf "median: django-tenants lookup %s req/s, behind the gateway %s req/s, ratio %.2f\n" \
  "$md" "$mg" "$(echo "$mg / $md" | bc -l)"
