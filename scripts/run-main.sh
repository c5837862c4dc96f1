#!/usr/bin/env bash
# Quick start, command 1: install, build, then a short real run of each pipeline with the default
# configs and the shipped weights:
#   1. the exact-score benchmark (every objective against the exact Gaussian-mixture teacher),
#   2. a short few-step benchmark on Fashion-MNIST: the teacher beside the shipped 4-step DMD2 student,
#      and 4-step FVGen and DMD2 students trained here for a few minutes,
#   3. text-to-3D: ASD on "a red torus" from the world teacher,
#   4. novel-view synthesis: 16 held-out scenes, the shipped video teacher at 50 and 4 DDIM steps and
#      the shipped 4-step FVGen student beside the point-cloud baseline, and one scene's novel views
#      from the teacher and the student as GIFs.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
./build/retort bench-gmm --config configs/gmm-ring8.toml --out out/gmm-ring8 "$@"
./build/retort bench-distill --config configs/fmnist-bench-short.toml --out out/bench-distill-short "$@"
./build/retort generate3d --config configs/text3d.toml --out out/text3d-red-torus-asd "$@"
./build/retort render-scenes --config configs/scenes.toml --out out/scenes --set scenes.train=1 --set scenes.test=16 "$@"
./build/retort bench-nvs --config configs/nvs-bench-short.toml --out out/nvs-bench-short "$@"
./build/retort nvs --model weights/nvs-teacher.safetensors --scenes out/scenes/test.safetensors --index 3 --out out/nvs-teacher
./build/retort nvs --model weights/nvs-fvgen-4step.safetensors --scenes out/scenes/test.safetensors --index 3 --out out/nvs-student
