#!/usr/bin/env bash
# Makes .venv-test/ (Django, django-tenants, gunicorn, psycopg and the
# tenant_gateway_django package, editable) for the Django tests and
# scripts/bench-django.sh, and schemathesis for tests/openapi.rs. Does
# nothing when it is up to date: the stamp holds the hash of both
# requirements files and the package's pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-test
requirements=integrations/django/requirements-test.txt
openapi_requirements=tests/requirements-openapi.txt
want=$(cat "$requirements" "$openapi_requirements" integrations/django/pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.stamp" 2>/dev/null)" = "$want" ]; then
    exit 0
fi
echo "Python test environment missing or outdated: making $venv" >&2
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
fi
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" -r "$openapi_requirements"
"$venv/bin/pip" install -q --disable-pip-version-check -e integrations/django
echo "$want" >"$venv/.stamp"
