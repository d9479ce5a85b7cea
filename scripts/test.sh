#!/usr/bin/env bash
# Runs every test of tenant-gateway: unit tests, integration tests (real
# gateway processes, real echo backends on free loopback ports, a real
# Django site) and a compile check of the benches. Works on a fresh machine
# with cargo and python3 (and apt-get, for PostgreSQL and pebble; pip, for Django).
set -euo pipefail
cd "$(dirname "$0")/.."
# The PostgreSQL tests start their own throwaway server (initdb + pg_ctl in a
# temporary directory); install the server binaries when they are missing.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    echo "PostgreSQL not found: installing it for the tests" >&2
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
fi
# The ACME tests (tests/acme.rs) order certificates from a real ACME server:
# Debian's pebble and its DNS test server (pebble-challtestsrv, same package).
if [ -z "${TENANT_GATEWAY_TEST_PEBBLE:-}" ] && ! [ -x /usr/bin/pebble ]; then
    echo "pebble not found: installing it for the tests" >&2
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq pebble >/dev/null
fi
# The Django integration tests (tests/django_app.rs) run a real Django +
# django-tenants site under gunicorn: a virtualenv with them (and the
# tenant_gateway_django package, editable) is made when missing or when the
# requirements changed.
./scripts/python-venv.sh
export TENANT_GATEWAY_TEST_PYTHON="$PWD/.venv-test/bin/python"
cargo test --all-targets --no-fail-fast "$@"
