#!/usr/bin/env bash
# Copies retort's build dependencies other than LibTorch (headers, pkg-config and CMake files,
# shared libraries and what they load) from this Debian 12 machine into one folder, so retort
# can be built on a machine that lacks them, e.g. a CUDA machine with pip's LibTorch 2.x:
#   scripts/dep-bundle.sh DIR                     (here; about 14 MB as a .tar.xz)
#   scripts/build-with-bundle.sh DIR [cmake args]  (there)
# Not bundled: LibTorch; oneDNN (LibTorch 2.x holds its own oneDNN 3, and retort's Winograd path is
# written to oneDNN 2, so it is left out there); glibc, libstdc++ and libgomp.
set -euo pipefail
out=${1:?usage: scripts/dep-bundle.sh DIR}
dev_packages=(libcli11-dev libtomlplusplus-dev nlohmann-json3-dev libfmt-dev libstb-dev libcairo2-dev
              libgd-dev libzip-dev libgtest-dev zlib1g-dev libgloo-dev pkgconf-bin libpkgconf3)
mkdir -p "$out"
for p in "${dev_packages[@]}"; do
  dpkg -L "$p" | while read -r f; do
    case "$f" in /usr/share/doc/*|/usr/share/man/*|/usr/share/lintian/*) continue ;; esac
    if [ -f "$f" ] || [ -L "$f" ]; then mkdir -p "$out$(dirname "$f")"; cp -a "$f" "$out$f"; fi
  done
done
# pkg-config files of the libraries the bundled ones name in Requires (only their presence is checked).
mkdir -p "$out/usr/lib/x86_64-linux-gnu/pkgconfig" "$out/usr/share/pkgconfig"
cp -a /usr/lib/x86_64-linux-gnu/pkgconfig/*.pc "$out/usr/lib/x86_64-linux-gnu/pkgconfig/"
cp -a /usr/share/pkgconfig/*.pc "$out/usr/share/pkgconfig/" 2>/dev/null || true
# The include folders the pkg-config files name (glib's for cairo, say) must exist; their headers
# are not needed (retort includes none of them).
pkg-config --cflags-only-I tomlplusplus cairo stb gdlib libzip | tr ' ' '\n' | sed -n 's/^-I//p' |
  while read -r d; do mkdir -p "$out$d"; done
# The shared libraries the bundled ones load, system runtime excluded.
lib=/usr/lib/x86_64-linux-gnu
for so in "$lib"/libcairo.so.2 "$lib"/libgd.so.3 "$lib"/libzip.so.4 "$lib"/libfmt.so.9 \
          "$lib"/libtomlplusplus.so.3 "$lib"/libstb.so.0 "$lib"/libpkgconf.so.3 "$lib"/libz.so.1; do
  { echo "$so"; ldd "$so" | awk '$3 ~ /^\// {print $3}'; } 
done | sort -u | grep -v -E '/(libc|libm|libpthread|libdl|librt|ld-linux-x86-64|libstdc\+\+|libgcc_s|libgomp)\.so' |
  while read -r f; do
    cp -L "$f" "$out$lib/$(basename "$f")"
    real=$(basename "$(readlink -f "$f")")  # what the -dev packages' libX.so links point to
    [ "$real" = "$(basename "$f")" ] || ln -sf "$(basename "$f")" "$out$lib/$real"
  done
find "$out" -name '*.a' ! -name 'libgtest*' ! -name 'libgmock*' -delete  # static libraries: unused
du -sh "$out"
