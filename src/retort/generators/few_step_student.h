// A K-step image student (DMD2's multi-step generator): from pure noise at t_0 = 1 it predicts
// x0, re-noises it to t_1, predicts again, ... and returns the last prediction. Training uses
// backward simulation: each batch picks a step k at random, runs the student's own steps 0..k-1
// without gradients, and returns step k's prediction with its graph, so the student is trained
// on the inputs it will see when sampling.
#pragma once
#include <functional>
#include <vector>

#include "retort/generators/generator.h"
#include "retort/models/diffusion_model.h"

namespace retort {

// DMD's regression set: pure noise x_T, its labels and the teacher's deterministic (DDIM) sample
// from that noise.
struct RegressionPairs {
  torch::Tensor noise, labels, images;
};

// Discrete timesteps of a K-step student, DMD2's spacing: K = 4 gives 999, 749, 499, 249.
std::vector<int64_t> default_student_timesteps(int64_t K, int64_t schedule_steps = 1000);

// The conditions of a batch of n student draws (e.g. the point-cloud renders of random training
// clips); the default is random classes.
using ConditionSampler = std::function<Cond(int64_t n, Rng& rng, const torch::Device& device)>;

class FewStepStudentImpl : public Generator {
 public:
  // `net` is trained in place (start it from the teacher's weights). `timesteps` are discrete
  // schedule indices, decreasing, the first one the last step of the schedule.
  FewStepStudentImpl(DiffusionModelPtr net, std::vector<int64_t> timesteps, bool backward_simulation = true);
  GenBatch draw(int64_t batch, Rng& rng) override;    // random balanced classes, one step with graph
  GenBatch draw(int64_t batch, const Share& share, Rng& rng) override;
  GenBatch draw_eval(int64_t n, Rng& rng) override;   // the full K-step chain, balanced classes
  // The full K-step chain for the given labels (no graph), clamped to [-1, 1]. `draws`, when
  // given, receives the noise it drew, [K, n, ...]: x at the first step, then each re-noising.
  torch::Tensor sample(const torch::Tensor& labels, Rng& rng, int64_t batch = 250, torch::Tensor* draws = nullptr);
  // The same for n samples under `cond` (a video student: [n,K,C,R,R]).
  torch::Tensor sample(const Cond& cond, int64_t n, Rng& rng, int64_t batch = 250, torch::Tensor* draws = nullptr);
  // Where draw() and draw_eval() take their conditions from (instead of random classes).
  void set_conditions(ConditionSampler sampler) { conditions_ = std::move(sampler); }
  const std::vector<int64_t>& timesteps() const { return timesteps_; }
  // DMD's regression loss: weight * mean squared error between the student's first step from a
  // pair's noise and the teacher's image for it, on `batch` random pairs per generator update.
  // With one step this is DMD's noise -> image regression (in pixels; DMD used LPIPS); with K
  // steps it anchors the first step, the only deterministic one.
  void set_regression(RegressionPairs pairs, double weight, int64_t batch);
  torch::Tensor regularization(Rng& rng, const Share& share) override;
  DiffusionModelPtr net;

 private:
  torch::Tensor time(int64_t i, int64_t batch, const torch::Device& device) const;
  // Runs steps [0, upto) without gradients from noise; returns x at t_upto. The re-noising draws
  // are made for the whole batch of `share` (x holds its rows).
  torch::Tensor simulate(torch::Tensor x, const Cond& cond, int64_t upto, Rng& rng, int64_t batch = 0,
                         const Share& share = {}, std::vector<torch::Tensor>* draws = nullptr);
  torch::Tensor labels(int64_t n, Rng& rng, const torch::Device& device) const;
  Cond conditions(int64_t n, Rng& rng, const torch::Device& device) const;
  // The shape of n samples: [n,C,R,R], or [n,K,C,R,R] for a video model.
  std::vector<int64_t> shape(int64_t n) const;
  std::vector<int64_t> timesteps_;
  ConditionSampler conditions_;
  bool backward_simulation_;
  RegressionPairs pairs_;
  double regression_weight_ = 0.0;
  int64_t regression_batch_ = 0;
};
TORCH_MODULE(FewStepStudent);

// The student's network in its own format (a UNet's safetensors, a TorchScript model's archive:
// name the file with student->net->file_extension()) with its timesteps (metadata
// "retort.student"); load_student rebuilds it.
void save_student(const std::filesystem::path& path, FewStepStudent& student);
// The file save_student(dir / stem) wrote, whichever its format; dir / (stem + ".safetensors")
// when there is none (for messages).
std::filesystem::path student_file(const std::filesystem::path& dir, const std::string& stem = "student");
// Returns an empty holder when the file is a plain (teacher) model.
FewStepStudent load_student(const std::filesystem::path& path);
// The student that `net`, loaded from `path` with `metadata` (load_diffusion_model), is; an empty
// holder for a teacher. Lets a caller that takes either read the file once.
FewStepStudent as_student(DiffusionModelPtr net, const std::map<std::string, std::string>& metadata,
                          const std::filesystem::path& path);

}  // namespace retort
