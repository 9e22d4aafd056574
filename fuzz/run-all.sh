#!/usr/bin/env bash
# Runs every cvvault fuzz target for $1 seconds each (default 30).
#
#   fuzz/run-all.sh [SECONDS]
#
# Fails (exit 1) if any target crashes; the reproducer is left in fuzz/artifacts/<target>/.
# Without the nightly toolchain or cargo-fuzz, prints `fuzzing skipped: <why>` and exits 0.
# Runs at the lowest CPU priority, one build job at a time (set CARGO_BUILD_JOBS to override).
set -uo pipefail

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: $0 [SECONDS]   (seconds per target, a positive whole number; default 30)" >&2
    exit 2
fi

cd "$(dirname "$0")" || exit 2

if ! command -v rustup >/dev/null 2>&1; then
    echo "fuzzing skipped: rustup is not installed, so the nightly toolchain cargo-fuzz needs cannot be selected"
    exit 0
fi
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzzing skipped: the nightly toolchain is not installed (rustup toolchain install nightly)"
    exit 0
fi
if ! cargo +nightly fuzz --help >/dev/null 2>&1; then
    echo "fuzzing skipped: cargo-fuzz is not installed (cargo install cargo-fuzz)"
    exit 0
fi

export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"

targets=$(cargo +nightly fuzz list) || { echo "cargo fuzz list failed" >&2; exit 1; }
if ! nice -n 19 cargo +nightly fuzz build; then
    echo "the fuzz targets do not build" >&2
    exit 1
fi

failed=()
for target in $targets; do
    mkdir -p "corpus/$target"
    echo "=== $target: ${seconds}s"
    if ! nice -n 19 cargo +nightly fuzz run "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1; then
        failed+=("$target")
    fi
done
# bearer_header makes a vault per process in the temporary folder.
rm -rf "${TMPDIR:-/tmp}"/cvvault-fuzz-bearer-*

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzzing FAILED: ${failed[*]} (reproducers in fuzz/artifacts/<target>/)" >&2
    exit 1
fi
echo "fuzzing passed: every target ran ${seconds}s without a crash"
