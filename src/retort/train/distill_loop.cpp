#include "retort/train/distill_loop.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <optional>

#include "retort/core/error.h"
#include "retort/dist/gradient_reducer.h"
#include "retort/dist/world.h"
#include "retort/train/checkpoint.h"
#include "retort/train/ema.h"
#include "retort/train/metrics_log.h"
#include "retort/run/progress.h"
#include "retort/run/run_folder.h"

namespace retort {

double finalize_gradients(const std::vector<torch::Tensor>& params, double clip) {
  std::vector<torch::Tensor> grads;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return 0.0;
  // Data parallelism: the mean over the ranks (started during the backward pass where it can be),
  // before the norm, so clipping and the non-finite guard see the global gradient and decide alike
  // on every rank.
  average_gradients(params);
  if (clip > 0) return clip_grad_norm(grads, clip);
  return torch::stack(at::_foreach_norm(grads, 2)).norm().item<double>();
}

void require_within_steps(const std::filesystem::path& ckpt, int64_t checkpoint_step, int64_t steps) {
  if (checkpoint_step > steps)
    throw ConfigError(fmt::format("{}: the checkpoint is at step {}, beyond the {} steps asked for; raise them or "
                                  "use another output folder", ckpt.string(), checkpoint_step, steps));
}

MultiTensorAdamW make_adamw(const std::vector<torch::Tensor>& params, const OptimOptions& o) {
  return MultiTensorAdamW(
      params, torch::optim::AdamWOptions(o.lr).betas({o.beta1, o.beta2}).weight_decay(o.weight_decay));
}

double decayed_lr(const OptimOptions& o, int64_t step) {
  return o.half_life > 0 ? o.lr * std::pow(0.5, double(step) / o.half_life) : o.lr;
}

static void set_lr(torch::optim::Optimizer& opt, double lr) {
  for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
}

DistillLoop::DistillLoop(DistillLoopOptions opts, Generator& gen, Objective& objective, Models models,
                         torch::nn::Module* fake_module, RealSampler real, const Schedule& schedule,
                         torch::Device device)
    : opts_(std::move(opts)),
      gen_(gen),
      objective_(objective),
      models_(models),
      fake_module_(fake_module),
      real_(std::move(real)),
      schedule_(schedule),
      device_(device),
      guard_(opts_.nonfinite) {
  if (const World& w = world(); w.distributed()) {
    rank_slice(opts_.batch, "distill.batch");  // refuses a batch the ranks cannot share evenly
    share_ = Share{w.rank, w.size};
  }
  auto needs = objective_.needs();
  if (needs.fake && !models_.fake) throw Error(objective_.name() + " needs a fake score");
  if (needs.disc && !models_.disc) throw Error(objective_.name() + " needs a discriminator");
  if (needs.real && !real_) throw Error(objective_.name() + " needs real samples");
  gen_params_ = trainable_parameters(gen_);
  if (gen_params_.empty()) throw Error("the generator has no trainable parameters");
  gen_opt_ = std::make_unique<MultiTensorAdamW>(make_adamw(gen_params_, opts_.gen_optim));
  if (needs.fake && fake_module_)
    for (auto& p : trainable_parameters(*fake_module_)) critic_params_.push_back(p);
  if (needs.disc)
    for (auto& p : trainable_parameters(*models_.disc)) critic_params_.push_back(p);
  if (!critic_params_.empty())
    critic_opt_ = std::make_unique<MultiTensorAdamW>(make_adamw(critic_params_, opts_.critic_optim));
}

NoiseDraw DistillLoop::draw_noise(const torch::Tensor& x0, Rng& rng) const {
  if (share_.whole())
    return {opts_.time.sample(x0.size(0), step_, opts_.steps, schedule_, rng, device_), rng.randn(x0.sizes(), device_)};
  auto shape = x0.sizes().vec();
  shape[0] = opts_.batch;
  auto t = opts_.time.sample(opts_.batch, step_, opts_.steps, schedule_, rng, device_);
  return {share_.rows(t), share_.rows(rng.randn(shape, device_))};
}

double DistillLoop::global(double value) const { return share_.whole() ? value : mean_over_ranks(value); }

std::map<std::string, double> DistillLoop::critic_update(const GenBatch& shared, const NoiseDraw& shared_noise,
                                                         int64_t k, Rng& rng) {
  CriticBatch b;
  if (k == 0 && opts_.share_noise) {
    b.x0 = shared.x0.detach();
    b.cond = shared.cond;
    b.noise = shared_noise;
  } else {
    torch::NoGradGuard ng;
    auto g = gen_.draw(opts_.batch, share_, rng);
    b.x0 = g.x0.detach();
    b.cond = g.cond;
    b.noise = draw_noise(b.x0, rng);
  }
  if (objective_.needs().real) {
    const int64_t n = share_.whole() ? b.x0.size(0) : opts_.batch;
    auto r = real_(n, rng);
    b.real_x0 = share_.rows(r.x0);
    b.real_cond = share_.rows(r.cond, n, device_);
    b.real_noise = draw_noise(r.x0, rng);
    if (objective_.options().r1_weight > 0) b.real_perturbation = draw_noise(r.x0, rng).eps;
  }
  auto loss = objective_.critic_loss(b, models_);
  if (!loss.defined()) return {};
  const double value = global(loss.item<double>());  // every rank decides alike
  if (!guard_.admit(value, "critic loss in " + objective_.name(), step_)) return {};
  critic_opt_->zero_grad();
  loss.backward();
  double norm = finalize_gradients(critic_params_, opts_.critic_optim.grad_clip);
  if (!guard_.admit(norm, "critic gradient (norm)", step_)) return {};
  set_lr(*critic_opt_, decayed_lr(opts_.critic_optim, step_));
  critic_opt_->step();
  return {{"critic_loss", value}, {"critic_grad_norm", norm}};
}

void DistillLoop::run(const std::filesystem::path& dir, Rng& rng, const std::string& config_text,
                      const SameRun& same_run) {
  const bool writes = world().writes();
  if (writes) create_output_folder(dir);
  const auto ckpt = dir / "checkpoint.pt";
  CheckpointParts parts;
  parts.modules["generator"] = &gen_;
  if (gen_ema_) parts.modules["generator_ema"] = gen_ema_;
  if (fake_module_ && objective_.needs().fake) parts.modules["fake"] = fake_module_;
  if (models_.disc && objective_.needs().disc) parts.modules["disc"] = models_.disc;
  parts.optimizers["generator"] = gen_opt_.get();
  parts.scalars["seconds"] = &seconds_.seconds;
  if (critic_opt_) parts.optimizers["critic"] = critic_opt_.get();
  step_ = 0;
  seconds_.seconds = 0.0;
  if (std::filesystem::exists(ckpt)) step_ = load_checkpoint(ckpt, parts, rng, config_text, same_run);
  require_within_steps(ckpt, step_, opts_.steps);
  if (!share_.whole())  // every rank starts from rank 0's weights
    for (auto& [name, m] : parts.modules) {
      broadcast_from_rank0(m->parameters());
      broadcast_from_rank0(m->buffers());
    }
  start_step_ = step_;
  std::optional<MetricsLog> log;
  if (writes) log.emplace(dir, step_);
  ProgressBar bar(opts_.label, opts_.steps, step_, opts_.progress && writes);
  seconds_.resume();
  if (opts_.on_modules && step_ < opts_.steps) opts_.on_modules(step_, parts.modules, rng);
  while (step_ < opts_.steps) {
    const auto update_start = std::chrono::steady_clock::now();
    // Generator update.
    gen_.set_progress(step_, opts_.steps);
    auto g = gen_.draw(opts_.batch, share_, rng);
    auto noise = draw_noise(g.x0, rng);
    auto gen_loss = objective_.generator_loss(g.x0, g.cond, noise, models_);
    double gl = global(gen_loss.item<double>());  // every rank decides alike
    auto reg = gen_.regularization(rng, share_);
    double rl = reg.defined() ? reg.item<double>() : 0.0;
    double gnorm = NAN;
    std::map<std::string, double> row;
    // A refused step (non-finite loss or gradient) skips its optimiser steps; its step still counts.
    if (guard_.admit(gl, "generator loss in " + objective_.name(), step_)) {
      gen_opt_->zero_grad();
      (reg.defined() ? gen_loss + reg : gen_loss).backward();
      gnorm = finalize_gradients(gen_params_, opts_.gen_optim.grad_clip);
      if (guard_.admit(gnorm, "generator gradient (norm)", step_)) {
        set_lr(*gen_opt_, decayed_lr(opts_.gen_optim, step_));
        gen_opt_->step();
        if (gen_ema_) ema_update(*gen_ema_, gen_, ema_decay(opts_.ema, opts_.ema_prior_updates + step_));
        // Critic updates.
        if (critic_opt_)
          for (int64_t k = 0; k < opts_.critic_steps; ++k) row = critic_update(g, noise, k, rng);
      }
    }
    guard_.end_step(step_);
    if (opts_.on_update)
      opts_.on_update(step_, std::chrono::duration<double>(std::chrono::steady_clock::now() - update_start).count());
    ++step_;
    if (opts_.on_modules) opts_.on_modules(step_, parts.modules, rng);
    seconds_.seconds = seconds_.now();
    if (step_ % opts_.log_every == 0 || step_ == opts_.steps) {
      row["gen_loss"] = gl;
      row["gen_grad_norm"] = gnorm;
      row["seconds"] = seconds_.seconds;
      if (opts_.gen_optim.half_life > 0) row["gen_lr"] = decayed_lr(opts_.gen_optim, step_ - 1);
      if (reg.defined()) row["regularization"] = global(rl);
      for (const auto& [k, v] : objective_.stats()) row[k] = global(v);
      if (log) log->write(step_, row);
    }
    if (writes && opts_.checkpoint_every > 0 && (step_ % opts_.checkpoint_every == 0 || step_ == opts_.steps))
      save_checkpoint(ckpt, parts, step_, rng, config_text);
    bar.update(step_);
  }
  gen_.set_progress(step_, opts_.steps);  // what is evaluated and saved after training
  bar.finish();
}

}  // namespace retort
