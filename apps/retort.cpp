// retort: the command-line front end. Each subcommand parses its flags, reads its config, and calls
// the library; every error is caught here and reported as one line with a non-zero exit.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>

#include "retort/dist/gradient_reducer.h"
#include "retort/dist/world.h"
#include "retort/bench/allreduce_bench.h"
#include "retort/bench/commands.h"
#include "retort/bench/pipeline_step_bench.h"
#include "retort/bench/step_bench.h"
#include "retort/cli/config_doc.h"
#include "retort/core/error.h"
#include "retort/image/commands.h"
#include "retort/image/export_command.h"
#include "retort/image/image_eval.h"
#include "retort/image/sample_command.h"
#include "retort/nvs/commands.h"
#include "retort/nvs/nvs_command.h"
#include "retort/nvs/scene_dataset.h"
#include "retort/io/average_weights.h"
#include "retort/render/world_dataset.h"
#include "retort/report/run_report.h"
#include "retort/run/progress.h"
#include "retort/run/run_folder.h"
#include "retort/text2d/commands.h"
#include "retort/text3d/commands.h"

namespace {

// --config, --set, --out and --no-progress: what every config-driven command takes.
void add_run_options(CLI::App* sub, std::string& config, std::vector<std::string>& sets, std::string& out,
                     bool& no_progress, const char* example, const char* out_help = "output folder (rerun to resume)") {
  sub->add_option("--config", config, fmt::format("TOML config (see {})", example))->required();
  sub->add_option("--set", sets, "override a config key, e.g. --set distill.gan_weight=3e-3 (repeatable)")
      ->allow_extra_args(false);
  sub->add_option("--out", out, out_help)->required();
  sub->add_flag("--no-progress", no_progress, "no progress bar");
}

// A shorthand flag's override: KEY=VALUE with VALUE quoted as a TOML string.
std::string quoted(const std::string& key, const std::string& value) {
  return key + "=" + nlohmann::json(value).dump();
}

// Prints a command's report: its result on stdout, its note on stderr.
// Rank 0 reports for a data-parallel run (the others trained the same steps and wrote nothing).
void print(const retort::CommandReport& r) {
  if (!retort::world().writes()) return;
  std::cout << r.result;
  std::cerr << r.note;
}

// Under torchrun: how much of this rank's time went to collectives (waiting for the others included).
void collective_summary(std::chrono::steady_clock::time_point t0) {
  if (!retort::world().distributed()) return;
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto buckets = retort::bucket_counts();
  std::fprintf(stderr,
               "rank %d of %d: %.1f s of %.1f s in collectives (%s); gradient buckets: %lld started during the "
               "backward pass, %lld after it, %lld redone\n",
               retort::world().rank, retort::world().size, retort::collective_seconds(), total,
               retort::world().backend.c_str(), (long long)buckets.during_backward, (long long)buckets.after_backward,
               (long long)buckets.redone);
}

// The command line as it could be pasted back into a shell.
std::string command_line(int argc, char** argv) {
  std::string line;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    const bool plain = !a.empty() && a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                                         "-_./=:,+@%") == std::string::npos;
    if (!plain) {
      std::string q = "'";
      for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
      a = q + "'";
    }
    line += (i ? " " : "") + a;
  }
  return line;
}

// A run folder's report.html after its command (rank 0); a report that cannot be written is a
// warning, never the command's failure.
void report_run(const std::string& out, const retort::ReportStatus& status) {
  if (out.empty() || !retort::world().writes() || !std::filesystem::is_directory(out)) return;
  try {
    retort::write_run_report(out, status);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "retort: warning: %s/report.html not written: %s\n", out.c_str(), e.what());
  }
}

int report(const char* kind, const std::string& what, int code) {
  std::fprintf(stderr, "retort: %s%s\n", kind, what.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  const auto started = std::chrono::steady_clock::now();
  // A file over the size limit (ulimit -f, a quota) then fails its write with EFBIG, which the
  // writers report naming the file, instead of the signal killing the run mid-write.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"retort: score-distillation toolkit (SDS, VSD, ASD, DMD, DMD2, softened RKL, f-divergences)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "retort 0.1");

  std::string config, out;
  std::vector<std::string> sets;
  bool no_progress = false;
  std::string config_command;
  auto* config_cmd = app.add_subcommand("config", "Print every config key of a command (default, range, meaning) "
                                                  "as markdown");
  bool config_list = false;
  config_cmd->add_option("command", config_command, "a config-driven command (retort config --list)");
  config_cmd->add_flag("--list", config_list, "the commands it documents, one a line");
  auto* gmm = app.add_subcommand("bench-gmm", "Run every method x generator of a config against the exact "
                                              "Gaussian-mixture teacher; write results.json/.md and PNGs");
  add_run_options(gmm, config, sets, out, no_progress, "configs/gmm-ring8.toml");
  int64_t seeds = 0;
  gmm->add_option("--seeds", seeds, "repeat every run with N independent seeds (overrides `seeds`)")
      ->check(CLI::Range(int64_t{1}, int64_t{1000}));

  retort::StepBenchOptions step_opts;
  auto* step = app.add_subcommand("bench-step", "Time one step of a workload: mlp (a training step of the MLP "
                                                "denoiser; compare with bench/python/mlp_step.py), hash-encoding "
                                                "(the hash grid's CPU kernel against its tensor path), field-render "
                                                "(the same in generate3d's render and backward), unet-train (a "
                                                "teacher training step) or ddim-sample (DDIM with CFG); compare the "
                                                "last two with bench/python_compare.sh), peak (this machine's conv and GEMM GFLOP/s), conv3x3 "
                                                "(a 3x3 convolution through LibTorch's direct path and the Winograd "
                                                "path), or one update of a pipeline's own loop: dmd2-update, "
                                                "fvgen-update, generate3d; --profile says where a UNet or pipeline "
                                                "workload's time goes");
  step->add_option("--workload", step_opts.workload,
                   "mlp; hash-encoding (--batch = points, default 65536); field-render (--batch = pixels per side, "
                   "default 32); unet-train (the world teacher's training "
                   "step, default batch 64); ddim-sample (--batch images per timed run, default 64); peak (3x3 conv "
                   "and square GEMM GFLOP/s at --peak-conv, --peak-gemm); conv3x3 (forward, and forward + backward, "
                   "direct against Winograd at the --peak-conv shapes); dmd2-update, fvgen-update, generate3d "
                   "(--steps updates timed inside the pipeline's loop, after --warmup)")
      ->check(CLI::IsMember(retort::step_bench_workloads()));
  step->add_option("--batch", step_opts.batch, "batch size")->check(CLI::Range(1, 1 << 20));
  step->add_option("--weights", step_opts.weights,
                   "unet-train, ddim-sample: the UNet file (default weights/world-teacher.safetensors, "
                   "weights/fmnist-teacher.safetensors)");
  step->add_option("--sampler-steps", step_opts.sampler_steps, "ddim-sample: DDIM steps")
      ->check(CLI::Range(1, 10000));
  step->add_option("--cfg", step_opts.cfg, "ddim-sample: guidance scale (1 = one conditional pass)")
      ->check(CLI::Range(0.0, 100.0));
  step->add_option("--dump", step_opts.dump,
                   "unet-train, ddim-sample: also write one seeded step's input, output and weights to this "
                   "safetensors file (bench/python/unet.py --check FILE); dmd2-update, fvgen-update, generate3d: "
                   "the first timed update's weights before and after, and its draws (bench/python/dmd2.py, "
                   "fvgen.py, generate3d.py --check FILE)");
  step->add_option("--config", step_opts.config,
                   "dmd2-update, fvgen-update, generate3d: the pipeline's config (default "
                   "configs/fmnist-dmd2-noreg.toml, configs/nvs-distill.toml, configs/text3d.toml)");
  step->add_option("--set", step_opts.sets, "dmd2-update, fvgen-update, generate3d: override a config key, e.g. "
                                            "--set field.kind=\"voxel\" (repeatable)")
      ->allow_extra_args(false);
  step->add_option("--hash-path", step_opts.hash_path,
                   "generate3d: the hash grid's CPU path, kernel (the default) or tensor (the vectorised reference)")
      ->check(CLI::IsMember({"kernel", "tensor"}));
  step->add_flag("--profile", step_opts.profile,
                 "unet-train, ddim-sample, dmd2-update, fvgen-update, generate3d: run the --steps timed steps once more under LibTorch's profiler (and one "
                 "more step to count FLOPs) and add "
                 "\"ops\" (self time per op category, time outside ops, top 10 ops), FLOPs per step, GFLOP/s and "
                 "the fraction of the peak (measured after, with the --peak-* shapes) to the JSON");
  std::vector<std::string> peak_convs;
  step->add_option("--peak-conv", peak_convs, "peak, conv3x3, --profile: 3x3 conv shapes N:C:HW, C -> C channels "
                                              "(default 64:64:32 64:128:16)")
      ->delimiter(',');
  step->add_option("--peak-gemm", step_opts.peak.gemms, "peak, --profile: square float32 GEMM sides (default "
                                                        "1024 2048)")
      ->delimiter(',')
      ->check(CLI::Range(1, 16384));
  step->add_option("--peak-rounds", step_opts.peak.rounds, "peak, conv3x3, --profile: timed calls per shape (the median counts)")
      ->check(CLI::Range(1, 1000));
  step->add_option("--dim", step_opts.dim, "data dimension")->check(CLI::Range(1, 1 << 16));
  step->add_option("--hidden", step_opts.hidden, "hidden width")->check(CLI::Range(1, 1 << 16));
  step->add_option("--blocks", step_opts.blocks, "residual blocks")->check(CLI::Range(0, 256));
  step->add_option("--steps", step_opts.steps, "timed steps")->check(CLI::Range(1, 1 << 24));
  step->add_option("--warmup", step_opts.warmup, "untimed steps first")->check(CLI::Range(0, 1 << 24));
  step->add_option("--threads", step_opts.runtime.torch_threads, "LibTorch threads (0 = all cores)");
  step->add_option("--device", step_opts.device,
                   "unet-train, ddim-sample (default cpu) and the pipeline workloads (default: the config's "
                   "runtime.device): cpu, cuda or cuda:N");
  step->add_option("--blas-threads", step_opts.runtime.blas_threads, "BLAS threads");
  step->add_option("--conv", step_opts.runtime.conv,
                   "CPU 3x3 convolutions: auto, winograd (oneDNN's Winograd kernels) or direct (LibTorch's, as "
                   "PyTorch; the Python twins' --check needs it)")
      ->check(CLI::IsMember({"auto", "winograd", "direct"}));
  step->add_option("--attention", step_opts.runtime.attention,
                   "CPU temporal attention: auto, fused (retort's kernel) or bmm (LibTorch's bmm + softmax, as "
                   "PyTorch; fvgen.py --check needs it)")
      ->check(CLI::IsMember({"auto", "fused", "bmm"}));

  std::vector<std::string> report_dirs;
  std::string report_index;
  auto* report_cmd = app.add_subcommand("report", "(Re)build report.html in run or benchmark folders (status, curves, "
                                                  "pictures, results, files), and an index over them");
  report_cmd->add_option("dirs", report_dirs, "run or benchmark folders")->required()->check(CLI::ExistingDirectory);
  report_cmd->add_option("--index", report_index, "also write this index page over the folders (a sortable table)");

  retort::AllReduceBenchOptions allreduce_opts;
  auto* allreduce = app.add_subcommand("bench-allreduce", "Time the gradient all-reduce of data-parallel training "
                                                          "(run under torchrun); print one JSON line");
  allreduce->add_option("--mb", allreduce_opts.mb, "MiB of float32 gradient")->check(CLI::Range(1e-6, 65536.0));
  allreduce->add_option("--iters", allreduce_opts.iters, "timed all-reduces")->check(CLI::Range(1, 1 << 20));
  allreduce->add_option("--warmup", allreduce_opts.warmup, "untimed all-reduces first")->check(CLI::Range(0, 1 << 20));
  allreduce->add_option("--bucket-mb", allreduce_opts.runtime.bucket_mb, "bucket size in MiB (runtime.bucket_mb)")
      ->check(CLI::Range(1e-3, 65536.0));
  allreduce->add_option("--backend", allreduce_opts.runtime.backend, "auto, gloo or nccl (runtime.backend)")
      ->check(CLI::IsMember({"auto", "gloo", "nccl"}));
  allreduce->add_option("--device", allreduce_opts.runtime.device, "cpu or cuda (runtime.device)");

  auto* train_eval = app.add_subcommand("train-evaluator", "Train the classifier whose features score image "
                                                          "samples (FID, precision/recall, class accuracy)");
  add_run_options(train_eval, config, sets, out, no_progress, "configs/fmnist-evaluator.toml");

  retort::ImageEvalRequest eval_req;
  auto* eval = app.add_subcommand("eval", "Score images against the test split with a trained evaluator; prints "
                                          "one markdown row");
  eval->add_option("--config", eval_req.config, "TOML config with a [data] table (reference: its test split)")
      ->required();
  eval->add_option("--evaluator", eval_req.evaluator, "evaluator.safetensors from train-evaluator")->required();
  eval->add_option("--images", eval_req.images,
                   "safetensors with \"images\" [N,C,H,W] in [-1,1] and optional \"labels\" [N]; or data:train / "
                   "data:test")
      ->required();
  eval->add_option("--k", eval_req.k, "neighbours of precision/recall")->check(CLI::Range(1, 1000));
  eval->add_option("--limit", eval_req.limit, "score only the first N images (0 = all)")
      ->check(CLI::Range(0, 1 << 30));

  auto* teacher = app.add_subcommand("train-teacher", "Train a class-conditional UNet diffusion teacher on an image "
                                                     "data set (EMA, resumable checkpoints, loss.png, safetensors)");
  add_run_options(teacher, config, sets, out, no_progress, "configs/fmnist-teacher.toml");
  int64_t stop_after = 0;
  teacher->add_option("--stop-after", stop_after, "end this invocation after N steps (rerun to continue)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));

  auto* nvs_teacher = app.add_subcommand("train-nvs-teacher", "Train the novel-view video teacher: a UNet over clips "
                                                              "with temporal attention, conditioned on point-cloud renders");
  add_run_options(nvs_teacher, config, sets, out, no_progress, "configs/nvs-teacher.toml");
  nvs_teacher->add_option("--stop-after", stop_after, "end this invocation after N steps (rerun to continue)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));

  retort::NvsRequest nvs_req;
  auto* nvs = app.add_subcommand("nvs", "Novel views from input view(s) and depth with a video teacher or student: "
                                        "point cloud, renders, generated clip (PNG frames, GIF, MP4, PLY, strip.png)");
  nvs->add_option("--model", nvs_req.model, "nvs-teacher.safetensors or a student of it")->required();
  nvs->add_option("--out", nvs_req.out, "output folder")->required();
  nvs->add_option("--scenes", nvs_req.scenes, "a render-scenes file: its input view(s), depth and trajectory");
  nvs->add_option("--index", nvs_req.index, "sample of --scenes")->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  nvs->add_option("--input", nvs_req.input, "your input view (PNG at the model's resolution)");
  nvs->add_option("--depth", nvs_req.depth, "its z-depth: safetensors with float32 \"depth\" [R,R]");
  nvs->add_option("--input2", nvs_req.input2, "a second input view");
  nvs->add_option("--depth2", nvs_req.depth2, "its z-depth");
  nvs->add_option("--camera2", nvs_req.camera2,
                  "its camera as an offset from the first: DPHI,DTHETA,DR (degrees, degrees, radius fraction); "
                  "without --trajectory the clip goes from the first view to the second");
  nvs->add_option("--fovy", nvs_req.fovy, "the input camera's vertical field of view (degrees)")->check(CLI::Range(1.0, 170.0));
  nvs->add_option("--elevation", nvs_req.elevation, "the input camera's elevation (degrees)")->check(CLI::Range(-89.0, 89.0));
  nvs->add_option("--distance", nvs_req.distance, "orbit radius (0 = the centre pixel's depth)")->check(CLI::Range(0.0, 1e6));
  nvs->add_option("--trajectory", nvs_req.trajectory, "offset:DPHI,DTHETA,DR or file:PATH (default with --scenes: its own)");
  nvs->add_option("--steps", nvs_req.steps, "teacher sampler steps (a student uses its own)")->check(CLI::Range(1, 100000));
  nvs->add_option("--cfg", nvs_req.cfg, "teacher guidance scale (1 = none)")->check(CLI::Range(0.0, 100.0));
  nvs->add_option("--sampler", nvs_req.sampler, "ddim or ddpm")->check(CLI::IsMember({"ddim", "ddpm"}));
  nvs->add_option("--seed", nvs_req.seed, "random seed");
  nvs->add_option("--device", nvs_req.device, "cpu, cuda or cuda:N");
  nvs->add_option("--threads", nvs_req.threads, "LibTorch threads (0 = all cores)")->check(CLI::Range(0, 1024));

  retort::SampleRequest sample_req;
  auto* sample = app.add_subcommand("sample", "Sample a teacher (DDIM/DDPM, N steps, CFG) or a few-step student "
                                              "(its K steps) into a PNG grid and samples.safetensors");
  sample->add_option("--model", sample_req.model, "a teacher or student: .safetensors, or TorchScript .pt")->required();
  sample->add_option("--out", sample_req.out, "output folder")->required();
  sample->add_option("--sampler", sample_req.sampler, "teacher sampler: ddim or ddpm")
      ->check(CLI::IsMember({"ddim", "ddpm"}));
  sample->add_option("--steps", sample_req.steps, "teacher sampler steps")->check(CLI::Range(1, 100000));
  sample->add_option("--cfg", sample_req.cfg, "teacher guidance scale (1 = none)")->check(CLI::Range(0.0, 100.0));
  sample->add_option("--n", sample_req.n, "number of images")->check(CLI::Range(1, 1 << 24));
  sample->add_option("--class", sample_req.label, "only this class (-1: unconditional; default: balanced)")
      ->check(CLI::Range(-1, 1 << 20));
  sample->add_option("--columns", sample_req.columns, "grid columns")->check(CLI::Range(1, 10000));
  sample->add_option("--seed", sample_req.seed, "random seed");
  sample->add_option("--device", sample_req.device, "cpu, cuda or cuda:N");
  sample->add_option("--threads", sample_req.threads, "LibTorch threads (0 = all cores)")->check(CLI::Range(0, 1024));

  std::string method;
  int64_t student_steps = 0;
  // distill and distill-nvs: the same student keys, two pipelines.
  auto add_student_command = [&](const char* name, const char* help, const char* default_config) {
    auto* sub = app.add_subcommand(name, help);
    add_run_options(sub, config, sets, out, no_progress, default_config);
    sub->add_option("--method", method, "overrides distill.method");
    sub->add_option("--steps", student_steps, "student steps K (overrides distill.student_steps)")
        ->check(CLI::Range(int64_t{1}, int64_t{1000}));
    return sub;
  };
  auto* distill = add_student_command("distill", "Distil a teacher into a few-step student (dmd, dmd2, fvgen, rkl, gan, "
                                                 "softened_rkl, kl, js, hellinger, jeffreys)",
                                      "configs/fmnist-distill.toml");
  auto* distill_nvs = add_student_command("distill-nvs", "Distil the novel-view video teacher into a few-step student "
                                                         "(fvgen and its ablations, dmd, dmd2, ...)",
                                          "configs/nvs-distill.toml");

  auto* bench_nvs = app.add_subcommand("bench-nvs", "Novel-view tables on held-out scenes: point-cloud baseline, teacher, "
                                                    "students; PSNR (covered / holes), SSIM, feature distance, FID, view "
                                                    "consistency, s/trajectory");
  add_run_options(bench_nvs, config, sets, out, no_progress, "configs/nvs-bench.toml");

  std::string compare_image, compare_reference;
  auto* compare = app.add_subcommand("compare", "PSNR and SSIM of an image against a reference image (novel-view "
                                                "metrics; SSIM as scikit-image computes it)");
  compare->add_option("image", compare_image, "PNG or JPEG")->required();
  compare->add_option("reference", compare_reference, "PNG or JPEG of the same size")->required();

  std::vector<std::string> average_inputs;
  std::string average_out;
  auto* average = app.add_subcommand("average-weights", "Element-wise mean of weight files of one architecture "
                                                       "(e.g. a student's last checkpoints): one safetensors file");
  average->add_option("--out", average_out, "the averaged safetensors file")->required();
  average->add_option("inputs", average_inputs, "safetensors files (same names, shapes and metadata)")
      ->required()
      ->expected(1, -1);

  retort::ExportRequest export_req;
  auto* export_cmd = app.add_subcommand("export", "Write a teacher or few-step student as a TorchScript module for "
                                                  "Python (torch.jit.load): forward, features, a student's sample");
  export_cmd->add_option("--model", export_req.model, "a teacher or student (.safetensors, or a student .pt)")
      ->required();
  export_cmd->add_option("--format", export_req.format, "torchscript")->check(CLI::IsMember({"torchscript"}));
  export_cmd->add_option("--out", export_req.out, "the TorchScript archive to write (.pt)")->required();

  auto* bench_distill = app.add_subcommand("bench-distill", "Teacher at N DDIM steps vs every configured student: "
                                                            "FID, precision, recall, class accuracy, ms/sample");
  add_run_options(bench_distill, config, sets, out, no_progress, "configs/fmnist-bench.toml");

  auto* render_world = app.add_subcommand("render-world", "Render the procedural 3D world (shapes x colours from "
                                                         "random cameras) into a data set for text-to-3D");
  add_run_options(render_world, config, sets, out, no_progress, "configs/world.toml",
                  "output folder: world.safetensors, preview.png");

  auto* render_scenes = app.add_subcommand("render-scenes", "Render novel-view-synthesis scenes: trajectories, "
                                                           "ground truth and point-cloud renders (train/test)");
  add_run_options(render_scenes, config, sets, out, no_progress, "configs/scenes.toml",
                  "output folder: train.safetensors, test.safetensors, preview.png");

  std::string prompt, prompts;
  auto* gen3d = app.add_subcommand("generate3d", "Text-to-3D by score distillation (ASD Algorithm 1; SDS, VSD): a "
                                                 "radiance field, views.png, turntable.gif, mesh.obj/.ply (one process: it optimises one "
                                                 "scene, so it does not run under torchrun)");
  add_run_options(gen3d, config, sets, out, no_progress, "configs/text3d.toml");
  gen3d->add_option("--prompt", prompt, "e.g. \"a red torus\" (overrides the config's prompt)");
  gen3d->add_option("--method", method, "asd, vsd or sds (overrides generate3d.method)");

  auto* eval3d = app.add_subcommand("eval3d", "Run generate3d for every prompt x method and score the results: "
                                              "classifier probability, FID, multi-view consistency");
  add_run_options(eval3d, config, sets, out, no_progress, "configs/text3d.toml");
  eval3d->add_option("--prompts", prompts, "prompts separated by ';' (override the config's list)");

  std::string prompts2d;
  auto* gen2d = app.add_subcommand("generate2d", "Score distillation in 2-D (ProlificDreamer's / ASD's particles): N "
                                                 "image particles per prompt optimised with SDS, VSD or ASD; "
                                                 "particles.png, particles.safetensors, loss.png");
  add_run_options(gen2d, config, sets, out, no_progress, "configs/text2d-fmnist.toml");
  gen2d->add_option("--prompts", prompts2d, "prompts separated by ';' (override the config's list)");
  gen2d->add_option("--method", method, "asd, vsd or sds (overrides generate2d.method)");

  auto* bench2d = app.add_subcommand("bench-2d", "SDS, VSD and ASD (Eq. 6 and Eq. 5 with real data) particles on "
                                                 "equal terms: FID, precision, recall, class accuracy");
  add_run_options(bench2d, config, sets, out, no_progress, "configs/bench-2d.toml");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  // A long run's report.html is rewritten at its checkpoints, at most every 30 s.
  retort::set_checkpoint_observer([&, last = std::chrono::steady_clock::time_point{}]() mutable {
    const auto now = std::chrono::steady_clock::now();
    if (now - last < std::chrono::seconds(30)) return;
    last = now;
    report_run(out, {"running", command_line(argc, argv), "", retort::latest_progress(), true});
  });
  try {
    const retort::RunRequest run{out, !no_progress};
    auto parsed = [&] { return retort::ConfigNode::from_file(config, sets); };
    if (*gmm) {
      if (seeds > 0) sets.push_back("seeds=" + std::to_string(seeds));
      print(retort::bench_gmm_command(parsed(), run));
    } else if (*train_eval) {
      print(retort::train_evaluator_command(parsed(), run));
    } else if (*eval) {
      std::cout << retort::image_eval_markdown(retort::run_image_eval(eval_req));
    } else if (*teacher) {
      print(retort::train_teacher_command(parsed(), run, stop_after));
    } else if (*nvs_teacher) {
      print(retort::train_nvs_teacher_command(parsed(), run, stop_after));
    } else if (*nvs) {
      std::cout << retort::run_nvs(nvs_req) << std::endl;
    } else if (*sample) {
      std::cout << retort::run_sample(sample_req) << std::endl;
    } else if (*distill || *distill_nvs) {
      if (!method.empty()) sets.push_back(quoted("distill.method", method));
      if (student_steps > 0) sets.push_back(fmt::format("distill.student_steps={}", student_steps));
      print(*distill ? retort::distill_command(parsed(), run) : retort::distill_nvs_command(parsed(), run));
    } else if (*bench_nvs) {
      print(retort::bench_nvs_command(parsed(), run));
    } else if (*bench_distill) {
      print(retort::bench_distill_command(parsed(), run));
    } else if (*export_cmd) {
      std::cout << retort::run_export(export_req) << std::endl;
    } else if (*compare) {
      std::cout << retort::compare_image_files(compare_image, compare_reference) << std::endl;
    } else if (*average) {
      std::vector<std::filesystem::path> inputs(average_inputs.begin(), average_inputs.end());
      retort::average_weights(inputs, average_out);
      std::fprintf(stderr, "wrote %s, the mean of %zu files\n", average_out.c_str(), inputs.size());
    } else if (*render_world) {
      std::cout << retort::run_render_world(config, out, !no_progress, sets) << std::endl;
    } else if (*render_scenes) {
      std::cout << retort::run_render_scenes(config, out, !no_progress, sets) << std::endl;
    } else if (*gen3d) {
      if (!prompt.empty()) sets.push_back(quoted("prompt", prompt));
      if (!method.empty()) sets.push_back(quoted("generate3d.method", method));
      print(retort::generate3d_command(parsed(), run));
    } else if (*eval3d) {
      if (!prompts.empty()) sets.push_back(retort::prompts_override(prompts));
      print(retort::eval3d_command(parsed(), run));
    } else if (*gen2d) {
      if (!prompts2d.empty()) sets.push_back(retort::prompts_override(prompts2d));
      if (!method.empty()) sets.push_back(quoted("generate2d.method", method));
      print(retort::generate2d_command(parsed(), run));
    } else if (*bench2d) {
      print(retort::bench2d_command(parsed(), run));
    } else if (*config_cmd) {
      if (config_list)
        for (const auto& c : retort::documented_commands()) std::cout << c << "\n";
      else if (config_command.empty())
        return report("", "config: name a command (retort config --list)", 2);
      else
        std::cout << retort::config_markdown(config_command);
    } else if (*step) {
      // Per-workload defaults of --batch, --steps, --warmup (mlp's are the struct's).
      static const std::map<std::string, std::array<int64_t, 3>> defaults = {
          {"hash-encoding", {65536, 20, 2}}, {"field-render", {32, 20, 2}}, {"unet-train", {64, 20, 3}},
          {"ddim-sample", {64, 3, 1}},       {"dmd2-update", {0, 3, 1}},  {"fvgen-update", {0, 5, 1}},
          {"generate3d", {0, 20, 3}}};
      if (retort::is_pipeline_workload(step_opts.workload) && step->count("--batch") > 0)
        return report("", fmt::format("bench-step --workload {}: the batch is the config's (--set a batch key)",
                                      step_opts.workload), 2);
      if (auto it = defaults.find(step_opts.workload); it != defaults.end()) {
        if (step->count("--batch") == 0) step_opts.batch = it->second[0];
        if (step->count("--steps") == 0) step_opts.steps = it->second[1];
        if (step->count("--warmup") == 0) step_opts.warmup = it->second[2];
      }
      if (!peak_convs.empty()) {
        step_opts.peak.convs.clear();
        for (const auto& c : peak_convs) step_opts.peak.convs.push_back(retort::parse_peak_conv(c));
      }
      std::cout << retort::run_step_bench(step_opts) << std::endl;
    } else if (*report_cmd) {
      for (const auto& d : report_dirs) std::cout << retort::write_run_report(d).string() << "\n";
      if (!report_index.empty()) {
        retort::write_report_index(report_index, {report_dirs.begin(), report_dirs.end()});
        std::cout << report_index << "\n";
      }
    } else if (*allreduce) {
      if (auto line = retort::run_allreduce_bench(allreduce_opts); !line.empty()) std::cout << line << std::endl;
    }
  } catch (const retort::ConfigError& e) {
    return report("config error: ", e.what(), 2);
  } catch (const retort::NonFiniteError& e) {
    report_run(out, {"failed", command_line(argc, argv), e.what(), "", true});
    return report("error: ", e.what(), 1);
  } catch (const retort::IoError& e) {
    return report("I/O error: ", e.what(), 3);
  } catch (const retort::Error& e) {
    return report("error: ", e.what(), 1);
  } catch (const c10::Error& e) {
    return report("torch error: ", e.what_without_backtrace(), 1);
  } catch (const std::exception& e) {
    return report("error: ", e.what(), 1);
  }
  collective_summary(started);
  report_run(out, {"", command_line(argc, argv), "", "", true});
  return 0;
}
