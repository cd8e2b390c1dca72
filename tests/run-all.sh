#!/usr/bin/env bash
# Checks formatting, lints and doc links, installs what the tests need and runs them all: the Rust
# tests, then the API tests (boto3 and the AWS CLI against the real server binary, moto's S3 server
# for S3 roots, the web console in Debian's Chromium driven by Playwright), AWS's Smithy Python SDK
# and the AWS SDK for JavaScript v3 against it, then each fuzz target for FUZZ_SECONDS (60).
#   TRAILLAKE_VENV     the Python virtualenv to use or create (default ~/.cache/traillake-venv)
#   TRAILLAKE_TRAILSCRAPER_VENV  trailscraper's (default ~/.cache/traillake-trailscraper-venv)
#   TRAILLAKE_FEDERATION_VENV    the federation readers' (default ~/.cache/traillake-federation-venv)
#   CARGO_TARGET_DIR   where cargo builds (default ./target)
set -euo pipefail
cd "$(dirname "$0")/.."

# Node.js and npm build the web console (crates/traillake-console bundles console/ with esbuild)
# and run the JavaScript SDK's tests; Debian's Chromium runs the console's browser test.
if ! command -v npm > /dev/null 2>&1; then
  apt-get update && apt-get install -y nodejs npm
fi
if ! command -v chromium > /dev/null 2>&1; then
  apt-get update && apt-get install -y chromium
fi

# Style and lints are gates, first: the formatting of rustfmt.toml (the workspace and fuzz/), clippy
# with the workspace's lints (Cargo.toml) as errors, and the docs' links, private items included
# since the docs link to them. Same target folder as the tests, so clippy's check build is reused.
cargo fmt --all --check
(cd fuzz && cargo fmt --check)
cargo clippy --workspace --all-targets --locked -- -D warnings
# The fuzz targets are a workspace of their own that `cargo test --workspace` does not build: check
# them against the crates now, not after the tests.
cargo check --manifest-path fuzz/Cargo.toml --bins --locked
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --document-private-items --locked

venv="${TRAILLAKE_VENV:-$HOME/.cache/traillake-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt

cargo build --workspace --locked
cargo test --workspace --locked

# trailscraper, a third-party CloudTrail tool the API tests run against the server, pins its own
# boto3: a virtualenv of its own.
trailscraper_venv="${TRAILLAKE_TRAILSCRAPER_VENV:-$HOME/.cache/traillake-trailscraper-venv}"
if [ ! -x "$trailscraper_venv/bin/python" ]; then
  python3 -m venv "$trailscraper_venv"
fi
"$trailscraper_venv/bin/pip" install --quiet --disable-pip-version-check -r tests/trailscraper/requirements.txt
export TRAILSCRAPER="$trailscraper_venv/bin/trailscraper"

# The engines that read federated stores (DuckDB with its delta extension, delta-rs, the Delta
# Sharing client) pin a DuckDB older than the benches': a virtualenv of their own.
federation_venv="${TRAILLAKE_FEDERATION_VENV:-$HOME/.cache/traillake-federation-venv}"
if [ ! -x "$federation_venv/bin/python" ]; then
  python3 -m venv "$federation_venv"
fi
"$federation_venv/bin/pip" install --quiet --disable-pip-version-check -r tests/federation/requirements.txt
export FEDERATION_PYTHON="$federation_venv/bin/python"

target="${CARGO_TARGET_DIR:-$PWD/target}"
export TRAILLAKE_BIN="$target/debug/traillake"
export PATH="$venv/bin:$PATH"
(cd tests/api && python -m pytest -q -p no:cacheprovider)

# AWS's Smithy-based SDK for Python needs Python >= 3.12: the first of python3.13, python3.12 on the
# PATH or in pyenv's versions (this machine kind ships both there), in a virtualenv of its own.
smithy_python=""
for candidate in python3.13 python3.12 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python; do
  if command -v "$candidate" > /dev/null 2>&1 \
    && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2> /dev/null; then
    smithy_python="$candidate"
    break
  fi
done
if [ -z "$smithy_python" ]; then
  echo "no Python >= 3.12 for the Smithy Python SDK's tests (aws-sdk-cloudtrail needs it)" >&2
  exit 1
fi
smithy_venv="${TRAILLAKE_SMITHY_VENV:-$HOME/.cache/traillake-smithy-venv}"
if [ ! -x "$smithy_venv/bin/python" ]; then
  "$smithy_python" -m venv "$smithy_venv"
fi
"$smithy_venv/bin/pip" install --quiet --disable-pip-version-check -r tests/smithy/requirements.txt
(cd tests/smithy && "$smithy_venv/bin/python" -m pytest -q -p no:cacheprovider)

# The AWS SDK for JavaScript v3, unmodified, against the server.
(cd tests/js && npm ci --no-audit --no-fund --loglevel=error && node --test)

# A fixed seed: CI tries the same inputs on every run, so that what it finds is reproducible; new
# inputs are found by longer runs with a new seed each (fuzz/run.sh).
FUZZ_SECONDS="${FUZZ_SECONDS:-60}" FUZZ_SEED="${FUZZ_SEED:-1}" bash fuzz/run.sh
