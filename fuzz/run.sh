#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (libFuzzer through cargo-fuzz), seeded with the corpus
# kept here (corpus/<target>/) and, when ../shared is beside the repository, with the real
# CloudTrail Lake queries and trail log files (read, never copied). A crash, a panic, a timeout or
# a blow-up of memory fails the run and leaves the input in fuzz/artifacts/<target>/.
#   FUZZ_SECONDS      seconds per target (default 60)
#   FUZZ_SEED         libFuzzer's seed (default: a new one each run); with one, a run tries the same
#                     inputs each time, as CI must (tests/run-all.sh), and finds nothing new
#   FUZZ_TIMEOUT      seconds an input may take before it counts as a hang (default 10)
#   FUZZ_MERGE=1      add the inputs that found new coverage to corpus/<target>/ (then commit them);
#                     the shared seeds are left out, so the corpus grows from its own inputs only
#   FUZZ_TARGET_DIR   where the instrumented build goes (default ~/.cache/traillake-fuzz-target)
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-60}"
timeout="${FUZZ_TIMEOUT:-10}"
seed=()
if [ -n "${FUZZ_SEED:-}" ]; then
  seed=(-seed="$FUZZ_SEED")
fi
target_dir="${FUZZ_TARGET_DIR:-$HOME/.cache/traillake-fuzz-target}"
shared="$(cd .. && pwd)/../shared"
if [ "${FUZZ_MERGE:-0}" = 1 ]; then
  shared=/nonexistent
fi

if ! cargo fuzz --version > /dev/null 2>&1; then
  cargo install cargo-fuzz --locked --version 0.13.2
fi
# cargo-fuzz passes rustc -Z flags (coverage instrumentation); the machine has a stable toolchain.
export RUSTC_BOOTSTRAP=1
# No sanitizer: the parsers are safe Rust, and a panic is what the targets look for.
fuzz=(cargo fuzz run --sanitizer none --target-dir "$target_dir")
cargo fuzz build --sanitizer none --target-dir "$target_dir"

for target in json_request sql_front_end cloudtrail_records audit_event; do
  seeds=("corpus/$target")
  max_len=16384
  case "$target" in
    sql_front_end) [ -d "$shared/queries/lake-samples" ] && seeds+=("$shared/queries/lake-samples") ;;
    cloudtrail_records)
      max_len=262144
      [ -d "$shared/data/trails" ] && seeds+=("$shared/data/trails")
      ;;
  esac
  found="$(mktemp -d)"
  mkdir -p "artifacts/$target"
  echo "fuzz: $target for ${seconds}s, seeds: ${seeds[*]}"
  log="$found.log"
  status=0
  "${fuzz[@]}" "$target" "$found" "${seeds[@]}" -- \
    -max_total_time="$seconds" -max_len="$max_len" -timeout="$timeout" -rss_limit_mb=2048 "${seed[@]}" \
    -print_final_stats=1 -artifact_prefix="artifacts/$target/" > "$log" 2>&1 || status=$?
  grep -E '^(INFO: seed corpus|#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$log" >&2
    echo "fuzz: $target failed (exit $status); the input is in fuzz/artifacts/$target/" >&2
    exit "$status"
  fi
  if [ "${FUZZ_MERGE:-0}" = 1 ]; then
    "${fuzz[@]}" "$target" "corpus/$target" "$found" -- -merge=1 -max_len="$max_len" 2>&1 | grep -E '^MERGE-OUTER: [0-9]+ new files' || true
  fi
  rm -rf "$found" "$log"
done
