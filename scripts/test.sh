#!/usr/bin/env bash
# Runs every test of tenant-gateway: unit tests, integration tests (real
# gateway processes, real echo backends on free loopback ports) and a
# compile check of the benches. Works on a fresh machine with cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --all-targets --no-fail-fast "$@"
