#!/usr/bin/env bash
# Runs every test of tenant-gateway: unit tests, integration tests (real
# gateway processes, real echo backends on free loopback ports) and a
# compile check of the benches. Works on a fresh machine with cargo (and
# apt-get, for PostgreSQL).
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
cargo test --all-targets --no-fail-fast "$@"
