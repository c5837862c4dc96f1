#!/usr/bin/env bash
# Coverage-guided fuzzing of every reader of untrusted input (fuzz/): builds the libFuzzer targets
# with clang, AddressSanitizer and UndefinedBehaviorSanitizer into build-fuzz/, runs each for
# SECONDS (default 60) from fuzz/corpus/NAME/, and prints per target the executions, executions per
# second, coverage (edges) and crashes. New corpus entries go to build-fuzz/corpus/NAME/; crashing
# inputs to build-fuzz/crashes/ (copy them into fuzz/corpus/NAME/ as regression cases once fixed).
#
#   scripts/fuzz.sh [SECONDS] [TARGET ...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
build=build-fuzz
command -v clang++ > /dev/null || { echo "fuzz.sh: clang++ not found (apt install clang libclang-rt-14-dev)" >&2; exit 2; }
CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRETORT_FUZZ=ON -DBUILD_TESTING=OFF > /dev/null
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=($(sed -n 's/^set(RETORT_FUZZ_TARGETS \(.*\))$/\1/p' fuzz/CMakeLists.txt))
cmake --build "$build" -j"$(nproc)" --target $(printf 'fuzz_%s ' "${targets[@]}") > "$build/build.log" 2>&1 ||
  { tail -n 30 "$build/build.log"; exit 1; }
mkdir -p "$build/crashes"
printf '| target | executions | exec/s | coverage (edges) | features | crashes |\n|---|---:|---:|---:|---:|---:|\n'
for t in "${targets[@]}"; do
  mkdir -p "$build/corpus/$t"
  log="$build/fuzz_$t.log"
  # LibTorch keeps allocations alive for the process's life by design: leaks are checked by
  # scripts/sanitize.sh over whole runs, not per input here.
  ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
    -print_final_stats=1 -artifact_prefix="$build/crashes/$t-" "$build/corpus/$t" "fuzz/corpus/$t" > "$log" 2>&1 || true
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
  ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
  crashes=$(find "$build/crashes" -name "$t-*" | wc -l)
  printf '| %s | %s | %s | %s | %s | %s |\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$crashes"
done
