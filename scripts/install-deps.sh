#!/usr/bin/env bash
# Installs everything retort needs on Debian 12 (idempotent; as root or with sudo).
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PACKAGES=(
  build-essential cmake ccache pkg-config
  libtorch-dev            # LibTorch 1.13 (C++)
  libgloo-dev             # the headers of c10d's Gloo backend (data parallelism)
  python3-torch           # torchrun, the launcher of data-parallel runs
  libopenblas0-pthread    # fast BLAS for LibTorch: ~30x the reference BLAS on matmuls here
  libdnnl-dev             # oneDNN's Winograd 3x3 convolutions (runtime.conv, README "Speed")
  libcli11-dev libtomlplusplus-dev nlohmann-json3-dev libfmt-dev
  libstb-dev libcairo2-dev zlib1g-dev
  libzip-dev              # checks a checkpoint's zip directory before LibTorch reads it
  libgd-dev               # animated GIF turntables of radiance fields
  libgtest-dev
  python3-skimage         # the reference SSIM the tests check ours against
  chromium                # renders report.html headless in the tests (a real browser)
  dataset-fashion-mnist   # the default image data set
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
