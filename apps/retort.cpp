// retort: the command-line front end. Each subcommand parses its flags, reads its config, and calls
// the library; every error is caught here and reported as one line with a non-zero exit.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <iostream>

#include "retort/bench/distill_bench.h"
#include "retort/bench/gmm_bench.h"
#include "retort/bench/step_bench.h"
#include "retort/core/error.h"
#include "retort/eval/image_metrics.h"
#include "retort/generators/sample_command.h"
#include "retort/train/image_distill.h"
#include "retort/train/teacher_train.h"
#include "retort/train/evaluator_train.h"

namespace {

int report(const char* kind, const std::string& what, int code) {
  std::fprintf(stderr, "retort: %s%s\n", kind, what.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"retort: score-distillation toolkit (SDS, VSD, ASD, DMD, DMD2, softened RKL, f-divergences)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "retort 0.1");

  std::string config, out;
  bool no_progress = false;
  auto* gmm = app.add_subcommand("bench-gmm", "Run every method x generator of a config against the exact "
                                              "Gaussian-mixture teacher; write results.json/.md and PNGs");
  gmm->add_option("--config", config, "TOML config (see configs/gmm-ring8.toml)")->required();
  gmm->add_option("--out", out, "output folder")->required();
  gmm->add_flag("--no-progress", no_progress, "no progress bar");

  retort::StepBenchOptions step_opts;
  auto* step = app.add_subcommand("bench-step", "Time one training step of the MLP denoiser (compare with "
                                                "bench/python/mlp_step.py)");
  step->add_option("--batch", step_opts.batch, "batch size")->check(CLI::Range(1, 1 << 20));
  step->add_option("--dim", step_opts.dim, "data dimension")->check(CLI::Range(1, 1 << 16));
  step->add_option("--hidden", step_opts.hidden, "hidden width")->check(CLI::Range(1, 1 << 16));
  step->add_option("--blocks", step_opts.blocks, "residual blocks")->check(CLI::Range(0, 256));
  step->add_option("--steps", step_opts.steps, "timed steps")->check(CLI::Range(1, 1 << 24));
  step->add_option("--warmup", step_opts.warmup, "untimed steps first")->check(CLI::Range(0, 1 << 24));
  step->add_option("--threads", step_opts.runtime.torch_threads, "LibTorch threads (0 = all cores)");
  step->add_option("--blas-threads", step_opts.runtime.blas_threads, "BLAS threads");

  auto* train_eval = app.add_subcommand("train-evaluator", "Train the classifier whose features score image "
                                                          "samples (FID, precision/recall, class accuracy)");
  train_eval->add_option("--config", config, "TOML config (see configs/fmnist-evaluator.toml)")->required();
  train_eval->add_option("--out", out, "output folder")->required();
  train_eval->add_flag("--no-progress", no_progress, "no progress bar");

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
  teacher->add_option("--config", config, "TOML config (see configs/fmnist-teacher.toml)")->required();
  teacher->add_option("--out", out, "output folder (rerun to resume)")->required();
  teacher->add_flag("--no-progress", no_progress, "no progress bar");
  int64_t stop_after = 0;
  teacher->add_option("--stop-after", stop_after, "end this invocation after N steps (rerun to continue)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));

  retort::SampleRequest sample_req;
  auto* sample = app.add_subcommand("sample", "Sample a teacher (DDIM/DDPM, N steps, CFG) or a few-step student "
                                              "(its K steps) into a PNG grid and samples.safetensors");
  sample->add_option("--model", sample_req.model, "teacher.safetensors or student.safetensors")->required();
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
  auto* distill = app.add_subcommand("distill", "Distil a teacher into a few-step student (dmd, dmd2, fvgen, rkl, gan, "
                                                "softened_rkl, kl, js, hellinger, jeffreys)");
  distill->add_option("--config", config, "TOML config (see configs/fmnist-distill.toml)")->required();
  distill->add_option("--out", out, "output folder (rerun to resume)")->required();
  distill->add_option("--method", method, "overrides distill.method");
  distill->add_option("--steps", student_steps, "student steps K (overrides distill.student_steps)")
      ->check(CLI::Range(int64_t{1}, int64_t{1000}));
  distill->add_flag("--no-progress", no_progress, "no progress bar");

  auto* bench_distill = app.add_subcommand("bench-distill", "Teacher at N DDIM steps vs every configured student: "
                                                            "FID, precision, recall, class accuracy, ms/sample");
  bench_distill->add_option("--config", config, "TOML config (see configs/fmnist-bench.toml)")->required();
  bench_distill->add_option("--out", out, "output folder (rerun to resume)")->required();
  bench_distill->add_flag("--no-progress", no_progress, "no progress bar");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (*gmm) {
      auto cfg = retort::load_gmm_bench_config(config);
      auto results = retort::run_gmm_bench(cfg, out, {!no_progress});
      std::cout << retort::results_markdown(results);
      std::fprintf(stderr, "wrote %s/results.json, results.md, overview.png\n", out.c_str());
    } else if (*train_eval) {
      auto cfg = retort::read_evaluator_config(retort::ConfigNode::from_file(config));
      auto r = retort::train_evaluator(cfg, out, !no_progress, cfg.resolved);
      std::cout << fmt::format("test accuracy {:.4f} ({} test images, {} steps, {:.0f} s)\n", r.test_accuracy,
                               r.test_size, r.steps, r.seconds);
      std::fprintf(stderr, "wrote %s/evaluator.safetensors, evaluator.json, loss.png\n", out.c_str());
    } else if (*eval) {
      std::cout << retort::image_eval_markdown(retort::run_image_eval(eval_req));
    } else if (*teacher) {
      auto root = retort::ConfigNode::from_file(config);
      auto cfg = retort::read_teacher_config(root);
      auto r = retort::train_teacher(cfg, out, !no_progress, root.resolved_toml(), stop_after);
      std::cout << fmt::format("trained {} steps, final loss {:.4f}, {:.0f} s in this invocation\n", r.steps,
                               r.final_loss, r.seconds);
      std::fprintf(stderr, "wrote %s/teacher.safetensors, samples.png, loss.png, metrics.csv\n", out.c_str());
    } else if (*sample) {
      std::cout << retort::run_sample(sample_req) << std::endl;
    } else if (*distill) {
      auto root = retort::ConfigNode::from_file(config);
      auto cfg = retort::read_image_distill_config(root, method, student_steps);
      root.finish();
      auto text = root.resolved_toml() + fmt::format("\n# --method {} --steps {}\n", cfg.method, cfg.student_steps);
      retort::distill_images(cfg, out, !no_progress, text);
      std::fprintf(stderr, "wrote %s/student.safetensors, samples.png, stage*/loss.png\n", out.c_str());
    } else if (*bench_distill) {
      auto root = retort::ConfigNode::from_file(config);
      auto cfg = retort::read_distill_bench_config(root);
      auto results = retort::run_distill_bench(cfg, out, !no_progress, root.resolved_toml());
      std::cout << retort::distill_results_markdown(results);
      std::fprintf(stderr, "wrote %s/results.md, results.json, runs/*/samples.png\n", out.c_str());
    } else if (*step) {
      std::cout << retort::run_step_bench(step_opts) << std::endl;
    }
  } catch (const retort::ConfigError& e) {
    return report("config error: ", e.what(), 2);
  } catch (const retort::IoError& e) {
    return report("I/O error: ", e.what(), 3);
  } catch (const retort::Error& e) {
    return report("error: ", e.what(), 1);
  } catch (const c10::Error& e) {
    return report("torch error: ", e.what_without_backtrace(), 1);
  } catch (const std::exception& e) {
    return report("error: ", e.what(), 1);
  }
  return 0;
}
