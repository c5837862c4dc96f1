// retort: the command-line front end. Each subcommand parses its flags, reads its config, and calls
// the library; every error is caught here and reported as one line with a non-zero exit.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "retort/bench/distill_bench.h"
#include "retort/bench/gmm_bench.h"
#include "retort/bench/step_bench.h"
#include "retort/cli/config_doc.h"
#include "retort/core/error.h"
#include "retort/eval/image_metrics.h"
#include "retort/generators/sample_command.h"
#include "retort/train/image_distill.h"
#include "retort/train/teacher_train.h"
#include "retort/train/evaluator_train.h"
#include "retort/render/world_dataset.h"
#include "retort/nvs/scene_dataset.h"
#include "retort/text3d/eval3d.h"
#include "retort/io/average_weights.h"
#include "retort/io/fingerprint.h"
#include "retort/text3d/generate3d.h"

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

// Appended to a run's config text: its checkpoints and finished runs belong to the teacher's
// contents, so a teacher retrained in place starts the runs afresh instead of resuming them.
std::string weights_line(const std::filesystem::path& teacher) {
  return "# teacher " + retort::file_fingerprint(teacher) + "\n";
}

// "a red torus; a blue cube" -> {"a red torus", "a blue cube"}.
std::vector<std::string> split_prompts(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(';', start);
    if (end == std::string::npos) end = text.size();
    auto item = text.substr(start, end - start);
    auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
    start = end + 1;
  }
  return out;
}

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
  std::vector<std::string> sets;
  bool no_progress = false;
  std::string config_command;
  auto* config_cmd = app.add_subcommand("config", "Print every config key of a command (default, range, meaning) "
                                                  "as markdown");
  bool config_list = false;
  config_cmd->add_option("command", config_command, "bench-gmm, distill, generate3d or render-scenes");
  config_cmd->add_flag("--list", config_list, "the commands it documents, one a line");
  auto* gmm = app.add_subcommand("bench-gmm", "Run every method x generator of a config against the exact "
                                              "Gaussian-mixture teacher; write results.json/.md and PNGs");
  add_run_options(gmm, config, sets, out, no_progress, "configs/gmm-ring8.toml");

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
  add_run_options(distill, config, sets, out, no_progress, "configs/fmnist-distill.toml");
  distill->add_option("--method", method, "overrides distill.method");
  distill->add_option("--steps", student_steps, "student steps K (overrides distill.student_steps)")
      ->check(CLI::Range(int64_t{1}, int64_t{1000}));

  std::vector<std::string> average_inputs;
  std::string average_out;
  auto* average = app.add_subcommand("average-weights", "Element-wise mean of weight files of one architecture "
                                                       "(e.g. a student's last checkpoints): one safetensors file");
  average->add_option("--out", average_out, "the averaged safetensors file")->required();
  average->add_option("inputs", average_inputs, "safetensors files (same names, shapes and metadata)")
      ->required()
      ->expected(1, -1);

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
                                                 "radiance field, views.png, turntable.gif, mesh.obj/.ply");
  add_run_options(gen3d, config, sets, out, no_progress, "configs/text3d.toml");
  gen3d->add_option("--prompt", prompt, "e.g. \"a red torus\" (overrides the config's prompt)");
  gen3d->add_option("--method", method, "asd, vsd or sds (overrides generate3d.method)");

  auto* eval3d = app.add_subcommand("eval3d", "Run generate3d for every prompt x method and score the results: "
                                              "classifier probability, FID, multi-view consistency");
  add_run_options(eval3d, config, sets, out, no_progress, "configs/text3d.toml");
  eval3d->add_option("--prompts", prompts, "prompts separated by ';' (override the config's list)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (*gmm) {
      auto cfg = retort::parse_gmm_bench_config(retort::ConfigNode::from_file(config, sets));
      auto results = retort::run_gmm_bench(cfg, out, {!no_progress});
      std::cout << retort::results_markdown(results);
      std::fprintf(stderr, "wrote %s/results.json, results.md, overview.png\n", out.c_str());
    } else if (*train_eval) {
      auto cfg = retort::read_evaluator_config(retort::ConfigNode::from_file(config, sets));
      auto r = retort::train_evaluator(cfg, out, !no_progress, cfg.resolved);
      std::cout << fmt::format("test accuracy {:.4f} ({} test images, {} steps, {:.0f} s)\n", r.test_accuracy,
                               r.test_size, r.steps, r.seconds);
      std::fprintf(stderr, "wrote %s/evaluator.safetensors, evaluator.json, loss.png\n", out.c_str());
    } else if (*eval) {
      std::cout << retort::image_eval_markdown(retort::run_image_eval(eval_req));
    } else if (*teacher) {
      auto root = retort::ConfigNode::from_file(config, sets);
      auto cfg = retort::read_teacher_config(root);
      auto r = retort::train_teacher(cfg, out, !no_progress, root.resolved_toml(), stop_after);
      std::cout << fmt::format("trained {} steps, final loss {:.4f}, {:.0f} s in this invocation\n", r.steps,
                               r.final_loss, r.seconds);
      if (r.steps < cfg.steps)
        std::fprintf(stderr, "stopped at step %lld of %lld; rerun to continue\n", (long long)r.steps,
                     (long long)cfg.steps);
      else
        std::fprintf(stderr, "wrote %s/teacher.safetensors, samples.png, loss.png, metrics.csv\n", out.c_str());
    } else if (*sample) {
      std::cout << retort::run_sample(sample_req) << std::endl;
    } else if (*distill) {
      if (!method.empty()) sets.push_back(quoted("distill.method", method));
      if (student_steps > 0) sets.push_back(fmt::format("distill.student_steps={}", student_steps));
      auto root = retort::ConfigNode::from_file(config, sets);
      auto cfg = retort::read_image_distill_config(root);
      root.finish();
      auto text = root.resolved_toml() + weights_line(cfg.teacher);
      retort::distill_images(cfg, out, !no_progress, text);
      std::fprintf(stderr, "wrote %s/student.safetensors, samples.png, stage*/loss.png\n", out.c_str());
    } else if (*bench_distill) {
      auto root = retort::ConfigNode::from_file(config, sets);
      auto cfg = retort::read_distill_bench_config(root);
      auto results = retort::run_distill_bench(cfg, out, !no_progress, root.resolved_toml() + weights_line(cfg.base.teacher));
      std::cout << retort::distill_results_markdown(results);
      std::fprintf(stderr, "wrote %s/results.md, results.json, runs/*/samples.png\n", out.c_str());
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
      auto root = retort::ConfigNode::from_file(config, sets);
      auto cfg = retort::read_generate3d_config(root);
      root.finish();
      auto text = root.resolved_toml() + weights_line(cfg.teacher);
      auto r = retort::run_generate3d(cfg, out, !no_progress, text);
      if (r.seconds_per_iteration > 0)
        std::cout << fmt::format("{} '{}': {} iterations, {:.3f} s/iteration in this invocation\n", cfg.method,
                                 cfg.prompt, r.iterations, r.seconds_per_iteration);
      else
        std::cout << fmt::format("{} '{}': {} iterations, already finished (none trained in this invocation)\n",
                                 cfg.method, cfg.prompt, r.iterations);
      std::fprintf(stderr, "wrote %s/field.safetensors, views.png, turntable.gif, mesh.obj, mesh.ply, loss.png\n",
                   out.c_str());
    } else if (*eval3d) {
      if (!prompts.empty()) sets.push_back("prompts=" + nlohmann::json(split_prompts(prompts)).dump());
      auto root = retort::ConfigNode::from_file(config, sets);
      auto cfg = retort::read_eval3d_config(root);
      root.finish();
      std::cout << retort::run_eval3d(cfg, out, !no_progress, root.resolved_toml() + weights_line(cfg.base.teacher));
      std::fprintf(stderr, "wrote %s/results.md, results.json, overview.png, runs/*/*/\n", out.c_str());
    } else if (*config_cmd) {
      if (config_list)
        for (const auto& c : retort::documented_commands()) std::cout << c << "\n";
      else if (config_command.empty())
        return report("", "config: name a command (retort config --list)", 2);
      else
        std::cout << retort::config_markdown(config_command);
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
