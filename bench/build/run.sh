#!/usr/bin/env bash
# Cold release build of the shipmate binary: what `cargo install --locked --path crates/shipmate`
# (and so every CI job that compiles shipmate) pays. A benchmark, not a test; results go to
# docs/benchmarks.md.
#
#   bench/build/run.sh [--runs N] [REV]
#
# Each run clones REV (default HEAD) of this repository into a scratch directory and builds
# `cargo build --release --locked -p shipmate` into an empty target directory, so nothing is
# reused but the crates already downloaded to CARGO_HOME. Prints each run's wall time, the
# median, and the binary's size. Run it on an otherwise idle machine.
set -euo pipefail

runs=3
if [[ ${1:-} == --runs ]]; then runs=$2; shift 2; fi
rev=${1:-HEAD}
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
commit=$(git -C "$repo" rev-parse --short "$rev")

scratch=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/shipmate-build-bench.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
git clone -q "$repo" "$scratch/src"
git -C "$scratch/src" checkout -q "$commit"

echo "rev $commit, $(nproc) cores, $(rustc --version)"
times=()
for i in $(seq 1 "$runs"); do
    rm -rf "$scratch/target"
    start=$(date +%s%N)
    (cd "$scratch/src" && CARGO_TARGET_DIR="$scratch/target" cargo build --release --locked -p shipmate -q)
    ms=$((($(date +%s%N) - start) / 1000000))
    times+=("$ms")
    size=$(stat -c %s "$scratch/target/release/shipmate")
    echo "run $i: $((ms / 1000)).$((ms % 1000 / 100)) s, binary $size bytes ($((size / 100000 / 10)).$((size / 100000 % 10)) MB)"
done
printf '%s\n' "${times[@]}" | sort -n |
    awk -v runs="$runs" '{a[NR] = $1} END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2;
        printf "median of %d: %.1f s (%.1f min)\n", runs, m / 1000, m / 60000 }'
