#!/usr/bin/env bash
# Installs what the tests need and runs them all: the Rust tests, then the API tests (boto3 and the
# AWS CLI against the real server binary, moto's S3 server for S3 roots), the AWS SDK for
# JavaScript v3 against it, then each fuzz target for FUZZ_SECONDS (60).
#   TRAILLAKE_VENV     the Python virtualenv to use or create (default ~/.cache/traillake-venv)
#   CARGO_TARGET_DIR   where cargo builds (default ./target)
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${TRAILLAKE_VENV:-$HOME/.cache/traillake-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt

cargo build --workspace --locked
cargo test --workspace --locked

target="${CARGO_TARGET_DIR:-$PWD/target}"
export TRAILLAKE_BIN="$target/debug/traillake"
export PATH="$venv/bin:$PATH"
(cd tests/api && python -m pytest -q -p no:cacheprovider)

# The AWS SDK for JavaScript v3, unmodified, against the server (Node.js from Debian if missing).
if ! command -v npm > /dev/null 2>&1; then
  apt-get update && apt-get install -y nodejs npm
fi
(cd tests/js && npm ci --no-audit --no-fund --loglevel=error && node --test)

# A fixed seed: CI tries the same inputs on every run, so that what it finds is reproducible; new
# inputs are found by longer runs with a new seed each (fuzz/run.sh).
FUZZ_SECONDS="${FUZZ_SECONDS:-60}" FUZZ_SEED="${FUZZ_SEED:-1}" bash fuzz/run.sh
