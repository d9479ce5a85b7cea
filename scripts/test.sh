#!/usr/bin/env bash
# Runs every test of tenant-gateway: unit tests, integration tests (real
# gateway processes, real echo backends on free loopback ports, a real
# Django site) and a compile check of the benches. Works on a fresh machine
# with cargo and python3 (and apt-get, for PostgreSQL, pebble, promtool,
# Chromium and Node.js; pip, for Django and schemathesis; npm, for Playwright).
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian packages the tests need, installed when missing (apt lists are
# refreshed once, before the first install).
apt_updated=0
apt_install() {
    echo "$1 not found: installing it for the tests" >&2
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    if [ "$apt_updated" = 0 ]; then $sudo apt-get update -qq; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$1" >/dev/null
}
# The PostgreSQL tests start their own throwaway server (initdb + pg_ctl in a
# temporary directory).
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || apt_install postgresql
# The ACME tests (tests/acme.rs) order certificates from a real ACME server:
# Debian's pebble and its DNS test server (pebble-challtestsrv, same package).
[ -n "${TENANT_GATEWAY_TEST_PEBBLE:-}" ] || [ -x /usr/bin/pebble ] || apt_install pebble
# The alert rules' tests (tests/dashboards.rs) run promtool, from Debian's
# prometheus package.
command -v promtool >/dev/null || apt_install prometheus
# The console's browser tests (tests/console.rs) drive Debian's Chromium
# with playwright-core from npm (tests/browser, locked by its
# package-lock.json; reinstalled when the lock changes). No browser is
# downloaded: Playwright is pointed at the system one.
command -v chromium >/dev/null || apt_install chromium
command -v node >/dev/null || apt_install nodejs
command -v npm >/dev/null || apt_install npm
if ! cmp -s tests/browser/package-lock.json tests/browser/node_modules/.installed-lock; then
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error &&
        cp package-lock.json node_modules/.installed-lock)
fi
export TENANT_GATEWAY_TEST_CHROMIUM="${TENANT_GATEWAY_TEST_CHROMIUM:-$(command -v chromium)}"
# The Django integration tests (tests/django_app.rs) run a real Django +
# django-tenants site under gunicorn: a virtualenv with them (and the
# tenant_gateway_django package, editable) is made when missing or when the
# requirements changed; it also holds schemathesis and openapi-spec-validator
# for the OpenAPI tests (tests/openapi.rs).
./scripts/python-venv.sh
export TENANT_GATEWAY_TEST_PYTHON="$PWD/.venv-test/bin/python"
cargo test --all-targets --no-fail-fast "$@"
