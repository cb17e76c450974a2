#!/usr/bin/env bash
# Builds shipmate and the benchmark in release mode and runs it (see docs/benchmarks-local.md).
# Extra arguments go to the benchmark, e.g. `bench/local/run.sh --clients 50 --alive 100`.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
profile="${BENCH_PROFILE:-release}"
flag=$([ "$profile" = release ] && echo --release || true)
cargo build $flag --locked --bin shipmate --bin shipmate-bench-local
exec "$CARGO_TARGET_DIR/$([ "$profile" = release ] && echo release || echo debug)/shipmate-bench-local" \
  --shipmate "$CARGO_TARGET_DIR/$([ "$profile" = release ] && echo release || echo debug)/shipmate" "$@"
