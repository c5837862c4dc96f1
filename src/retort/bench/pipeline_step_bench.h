// bench-step's whole-update workloads: one update of a pipeline's own training loop, timed inside
// that loop (DistillLoopOptions::on_update), on the pipeline's shipped config:
//  * dmd2-update: `retort distill` with configs/fmnist-dmd2-noreg.toml (the shipped 4-step student's
//    recipe, started from the teacher: `init` is cleared): 5 fake-score / discriminator updates and
//    one student update through backward simulation, batch 32, 16 px;
//  * fvgen-update: `retort distill-nvs` with configs/nvs-distill.toml, stage 2 (softened reverse KL
//    with the discriminator; stage 1 runs one GAN update first): batch 4 clips of 8 frames, 32 px;
//  * generate3d: `retort generate3d` with configs/text3d.toml (ASD, the hash grid; --set
//    field.kind="voxel" for the voxel grid, generate3d.method=... for another method).
// The run trains `warmup` + `steps` updates in a temporary folder (no checkpoints; the final
// outputs at their smallest) that is removed afterwards; the median of the last `steps` updates is
// the result. --config and --set choose another config or key.
#pragma once
#include <string>

#include "retort/bench/step_bench.h"

namespace retort {

bool is_pipeline_workload(const std::string& workload);
// The shipped config a pipeline workload reads when `config` is empty.
std::string default_pipeline_config(const std::string& workload);
// One JSON line: ms_per_update (median), ms_min, ms_max, updates, warmup, and the run's shape
// (method, batch, critic_steps, field, ...). `runtime` is apply_runtime's summary.
std::string run_pipeline_step_bench(const StepBenchOptions& o);

}  // namespace retort
