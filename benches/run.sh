#!/usr/bin/env bash
# Builds the release binary, installs what the benchmarks need (boto3, DuckDB, pyarrow, grpcio) into the test
# virtualenv, and runs the end-to-end query benchmark against DuckDB on the same Parquet files.
#   bash benches/run.sh [--events N] [--days D] [--runs R] [--workdir DIR]   the query benchmark (queries.py)
#   bash benches/run.sh --imports [--events N]       the import benchmark (imports.py)
#   bash benches/run.sh --ingest [--seconds S]       the PutAuditEvents benchmark (ingest.py)
#   bash benches/run.sh --results [--events N]       reading a result: JSON pages, Arrow, Flight (results.py)
#   bash benches/run.sh --cluster [--events N] [--days D] [--runs R] [--workdir DIR]   queries alone and on 1 and 2 workers (cluster.py)
#   bash benches/run.sh --soak [--seconds S]         ingestion, imports and 10 query clients at once (soak.py)
#   bash benches/run.sh --live --lookup|--follow|--recording|--trails|--insights   LookupEvents, following, recording's
#                                                    cost, trails' delivery and cost, Insights' cost (live.py)
#   TRAILLAKE_VENV     the Python virtualenv (default ~/.cache/traillake-venv)
#   CARGO_TARGET_DIR   where cargo builds (default ./target)
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${TRAILLAKE_VENV:-$HOME/.cache/traillake-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r benches/requirements.txt

cargo build --release --locked -p traillake
target="${CARGO_TARGET_DIR:-$PWD/target}"
if [ "${1:-}" = "--imports" ]; then
  shift
  "$venv/bin/python" benches/imports.py --binary "$target/release/traillake" "$@"
elif [ "${1:-}" = "--results" ]; then
  shift
  "$venv/bin/python" benches/results.py --binary "$target/release/traillake" "$@"
elif [ "${1:-}" = "--live" ]; then
  shift
  "$venv/bin/python" benches/live.py --binary "$target/release/traillake" "$@"
elif [ "${1:-}" = "--soak" ]; then
  shift
  "$venv/bin/python" benches/soak.py --binary "$target/release/traillake" "$@"
elif [ "${1:-}" = "--cluster" ]; then
  shift
  "$venv/bin/python" benches/cluster.py --binary "$target/release/traillake" "$@"
elif [ "${1:-}" = "--ingest" ]; then
  shift
  "$venv/bin/python" benches/ingest.py --binary "$target/release/traillake" "$@"
else
  "$venv/bin/python" benches/queries.py --binary "$target/release/traillake" "$@"
fi
