#!/usr/bin/env bash
# The library, the CLI and the tests built with AddressSanitizer + UndefinedBehaviorSanitizer into
# build-asan/ (GCC, or CXX=clang++), then the unit tests (every GoogleTest) and the fuzz corpora's
# replay run under them, LeakSanitizer on at exit. Any report fails the run. Extra arguments go to
# ctest (e.g. -R 'cli\.' for the command-line tests too, which take longer).
#
#   scripts/sanitize.sh [CTEST_ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-asan
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRETORT_SANITIZE=ON > /dev/null
start=$(date +%s)
cmake --build "$build" -j"$(nproc)" > "$build/build.log" 2>&1 || { tail -n 30 "$build/build.log"; exit 1; }
built=$(date +%s)
# LibTorch's own one-time allocations (kernel registries, thread pools) live until exit by design;
# lsan.supp names them so that a leak of ours still fails.
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:detect_odr_violation=0
export LSAN_OPTIONS=suppressions=$PWD/scripts/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(-E '^cli\.')
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" "${args[@]}"
echo "sanitize: clean; build $((built - start)) s, tests $(($(date +%s) - built)) s"
