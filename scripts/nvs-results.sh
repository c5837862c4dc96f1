#!/usr/bin/env bash
# The novel-view results of the README, command by command: the scenes, the video teacher, the MSE
# regressor, every student of distill-nvs and the bench-nvs tables. Hours on two cores; every command
# resumes when rerun, so stop the script any time and run it again.
#   scripts/nvs-results.sh [STAGE ...]     (default: all stages, in this order)
# stages: scenes teacher fvgen regressor ablation baselines steps seeds bench bench-all, and apart
# from the default list gan-probes (FVGen's stage 1 alone under several settings, README), stage2-lr1e-4
# (stage 2 at the earlier lr 1e-4) and bench-gan-probes (their table, with the fvgen and ablation students)
# The teacher and the FVGen student are copied to weights/ (shipped: nvs-teacher.safetensors,
# nvs-fvgen-4step.safetensors); the regressor and the other students stay in runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
retort=./build/retort
runs=runs

student() {  # student NAME [distill-nvs options]
  local name=$1
  shift
  $retort distill-nvs --config configs/nvs-distill.toml --out "$runs/nvs-$name" --no-progress "$@"
}

probe() {  # probe NAME [distill-nvs options]: 300 updates of stage 1 alone (one thread each; run two at once)
  local name=$1
  shift
  student "probe-$name" --method gan --set distill.steps=0 --set runtime.threads=1 "$@"
}

stage() {
  case $1 in
    scenes) $retort render-scenes --config configs/scenes.toml --out "$runs/scenes" ;;
    teacher)
      $retort train-nvs-teacher --config configs/nvs-teacher.toml --out "$runs/nvs-teacher" --no-progress
      cp "$runs/nvs-teacher/nvs-teacher.safetensors" weights/nvs-teacher.safetensors ;;
    fvgen)
      student fvgen
      cp "$runs/nvs-fvgen/student.safetensors" weights/nvs-fvgen-4step.safetensors ;;
    regressor) $retort train-nvs-teacher --config configs/nvs-regressor.toml --out "$runs/nvs-regressor" --no-progress ;;
    ablation) for m in gan rkl softened_rkl; do student "$m" --method "$m"; done ;;
    baselines) for m in dmd dmd2; do student "$m" --method "$m"; done ;;
    steps) for k in 1 2; do student "fvgen-${k}step" --steps "$k"; done ;;
    seeds) for m in fvgen gan rkl softened_rkl; do student "$m-seed1" --method "$m" --set distill.seed=1; done ;;
    bench) $retort bench-nvs --config configs/nvs-bench.toml --out "$runs/nvs-bench" --no-progress ;;
    bench-all) $retort bench-nvs --config configs/nvs-bench-all.toml --out "$runs/nvs-bench-all" --no-progress ;;
    gan-probes)
      local lv=(--set distill.disc_features=levels) fast=(--set distill.critic_lr=1e-3)
      probe bottleneck-1e-4 --set distill.gan_init_lr=1e-4 & probe bottleneck-1e-5 --set distill.gan_init_lr=1e-5 & wait
      probe levels-1e-4 "${lv[@]}" --set distill.gan_init_lr=1e-4 & probe levels-1e-5 "${lv[@]}" --set distill.gan_init_lr=1e-5 & wait
      probe levels-1e-5-critic1e-3 "${lv[@]}" "${fast[@]}" --set distill.gan_init_lr=1e-5 &
      probe bottleneck-1e-5-critic1e-3 "${fast[@]}" --set distill.gan_init_lr=1e-5 & wait
      probe levels-1e-5-critic1e-3-r1 "${lv[@]}" "${fast[@]}" --set distill.gan_init_lr=1e-5 --set distill.r1_weight=1000 &
      probe levels-2e-6-critic1e-3 "${lv[@]}" "${fast[@]}" --set distill.gan_init_lr=2e-6 & wait
      # the discriminator alone (the student frozen): against the untouched 4-step student, and
      # against the tinted one of levels-1e-5
      probe frozen-student "${lv[@]}" "${fast[@]}" --set distill.gan_init_lr=1e-10 --set distill.gan_init_steps=150 &
      probe frozen-tinted "${lv[@]}" "${fast[@]}" --set distill.gan_init_lr=1e-10 --set distill.gan_init_steps=150 \
        --set distill.init=$runs/nvs-probe-levels-1e-5 & wait ;;
    stage2-lr1e-4)  # FVGen and softened RKL alone with stage 2 at the earlier lr 1e-4 (one thread each, at once)
      student fvgen-lr1e-4 --set distill.lr=1e-4 --set runtime.threads=1 &
      student softened_rkl-lr1e-4 --method softened_rkl --set distill.lr=1e-4 --set runtime.threads=1 & wait ;;
    bench-gan-probes) $retort bench-nvs --config configs/nvs-bench-gan-probes.toml --out "$runs/nvs-bench-gan-probes" --no-progress ;;
    *) echo "nvs-results.sh: unknown stage '$1' (scenes teacher fvgen regressor ablation baselines steps seeds bench bench-all)" >&2
       exit 2 ;;
  esac
}

if [ $# -eq 0 ]; then set -- scenes teacher fvgen regressor ablation baselines steps seeds bench bench-all; fi
for s in "$@"; do stage "$s"; done
