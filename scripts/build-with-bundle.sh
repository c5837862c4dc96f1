#!/usr/bin/env bash
# Builds retort (Release, ./build) against another LibTorch, e.g. pip's CUDA wheel, on a machine
# that lacks retort's other dependencies, taking them from a folder scripts/dep-bundle.sh made on
# Debian 12:
#   scripts/build-with-bundle.sh BUNDLE_DIR [CMake arguments...] [-- build-tool arguments...]
# LibTorch is found through python3's torch (TORCH_PREFIX overrides), NCCL's header through pip's
# nvidia-nccl package when there is one. The binaries find the bundle's libraries by RPATH.
set -euo pipefail
bundle=$(cd "${1:?usage: scripts/build-with-bundle.sh BUNDLE_DIR [cmake args]}" && pwd)
shift
cd "$(dirname "$0")/.."
lib=$bundle/usr/lib/x86_64-linux-gnu
torch_prefix=${TORCH_PREFIX:-$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')}
nccl_root=$(python3 -c 'import nvidia.nccl as n; print(list(n.__path__)[0])' 2>/dev/null || true)
# The bundle's pkgconf, run with its own library; its .pc files name /usr paths, read under the bundle.
printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s/usr/bin/pkgconf "$@"\n' "$lib" "$bundle" > "$bundle/pkgconf"
chmod +x "$bundle/pkgconf"
export PKG_CONFIG_LIBDIR=$lib/pkgconfig:$bundle/usr/share/pkgconfig PKG_CONFIG_SYSROOT_DIR=$bundle
cmake_args=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do cmake_args+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
cuda=()
[ -d /usr/local/cuda ] && cuda=(-DCUDAToolkit_ROOT=/usr/local/cuda)
# RPATH, not RUNPATH (--disable-new-dtags): it also applies to what the bundle's libraries load.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch_prefix;$bundle/usr" \
  -DPKG_CONFIG_EXECUTABLE="$bundle/pkgconf" ${nccl_root:+-DNCCL_ROOT="$nccl_root"} "${cuda[@]}" \
  -DCMAKE_BUILD_RPATH="$lib" -DCMAKE_EXE_LINKER_FLAGS="-Wl,--disable-new-dtags -Wl,-rpath-link,$lib" \
  -DCMAKE_SHARED_LINKER_FLAGS="-Wl,-rpath-link,$lib" "${cmake_args[@]}"
cmake --build build -j"$(nproc)" -- "$@"
