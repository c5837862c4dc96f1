#!/usr/bin/env bash
# The novel-view results of the README, command by command: the scenes, the video teacher, the MSE
# regressor, every student of distill-nvs and the bench-nvs tables. Hours on two cores; every command
# resumes when rerun, so stop the script any time and run it again.
#   scripts/nvs-results.sh [STAGE ...]     (default: all stages, in this order)
# stages: scenes teacher fvgen regressor ablation baselines steps seeds bench bench-all
# The teacher is copied to weights/nvs-teacher.safetensors (shipped); the regressor and the students
# stay in runs/ (none is shipped yet: README, "Students of the video teacher").
set -euo pipefail
cd "$(dirname "$0")/.."
retort=./build/retort
runs=runs

student() {  # student NAME [distill-nvs options]
  local name=$1
  shift
  $retort distill-nvs --config configs/nvs-distill.toml --out "$runs/nvs-$name" --no-progress "$@"
}

stage() {
  case $1 in
    scenes) $retort render-scenes --config configs/scenes.toml --out "$runs/scenes" ;;
    teacher)
      $retort train-nvs-teacher --config configs/nvs-teacher.toml --out "$runs/nvs-teacher" --no-progress
      cp "$runs/nvs-teacher/nvs-teacher.safetensors" weights/nvs-teacher.safetensors ;;
    fvgen) student fvgen ;;
    regressor) $retort train-nvs-teacher --config configs/nvs-regressor.toml --out "$runs/nvs-regressor" --no-progress ;;
    ablation) for m in gan rkl softened_rkl; do student "$m" --method "$m"; done ;;
    baselines) for m in dmd dmd2; do student "$m" --method "$m"; done ;;
    steps) for k in 1 2; do student "fvgen-${k}step" --steps "$k"; done ;;
    seeds) for m in fvgen gan rkl softened_rkl; do student "$m-seed1" --method "$m" --set seed=1; done ;;
    bench) $retort bench-nvs --config configs/nvs-bench.toml --out "$runs/nvs-bench" --no-progress ;;
    bench-all) $retort bench-nvs --config configs/nvs-bench-all.toml --out "$runs/nvs-bench-all" --no-progress ;;
    *) echo "nvs-results.sh: unknown stage '$1' (scenes teacher fvgen regressor ablation baselines steps seeds bench bench-all)" >&2
       exit 2 ;;
  esac
}

if [ $# -eq 0 ]; then set -- scenes teacher fvgen regressor ablation baselines steps seeds bench bench-all; fi
for s in "$@"; do stage "$s"; done
