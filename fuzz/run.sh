#!/bin/sh
# Runs one fuzz target on stable Rust for SECONDS (default 240), at the lowest CPU priority:
#   fuzz/run.sh TARGET [SECONDS] [extra libFuzzer options...]
# Builds it first (cargo-fuzz, RUSTC_BOOTSTRAP=1, no sanitizer), then runs the binary itself
# (not `cargo fuzz run`, which rebuilds and re-runs on a crash). New inputs go to
# fuzz/corpus/TARGET (not committed), the seeds are fuzz/seeds/TARGET, a crash is written to
# fuzz/artifacts/TARGET/. See README.md.
set -eu
cd "$(dirname "$0")"
target=$1
seconds=${2:-240}
shift $(( $# < 2 ? $# : 2 ))
RUSTC_BOOTSTRAP=1 nice -n 19 cargo fuzz build --sanitizer none "$target"
mkdir -p "corpus/$target" "artifacts/$target"
exec nice -n 19 "target/x86_64-unknown-linux-gnu/release/$target" \
    -artifact_prefix="artifacts/$target/" \
    -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 "$@" "corpus/$target" "seeds/$target"
