#!/bin/sh
# retort as a C++ library (issue 21, part 3): `cmake --install` into a fresh prefix, then
# examples/cpp, a separate CMake project, finds it with find_package(retort), links retort::retort,
# builds, and runs: VSD particles must get closer to the exact target (MMD at most half of the start).
# Usage: install_consumer.sh BUILD_DIR WORK_DIR
set -eu
build=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log" 2>&1 || { cat "$work/install.log"; exit 1; }
test -f "$work/prefix/lib/cmake/retort/retortConfig.cmake"
test -f "$work/prefix/include/retort/distill/objective.h"
test -x "$work/prefix/bin/retort"
cmake -S "$here/../../examples/cpp" -B "$work/example" -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/configure.log" 2>&1 ||
  { cat "$work/configure.log"; exit 1; }
cmake --build "$work/example" > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
"$work/example/particles" 300 > "$work/run.log" 2>&1 || { cat "$work/run.log"; exit 1; }
cat "$work/run.log"
/usr/bin/python3 - "$work/run.log" <<'PY'
import re, sys
mmd = [float(x) for x in re.findall(r"MMD ([\d.]+)", open(sys.argv[1]).read())]
assert len(mmd) == 2, mmd
assert mmd[1] < 0.5 * mmd[0], f"the particles did not approach the target: MMD {mmd[0]} -> {mmd[1]}"
PY
echo "install consumer ok"
