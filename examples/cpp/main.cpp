// retort as a library: variational score distillation (VSD) of 512 particles against the exact
// teacher of an 8-mode ring, through the objective interface every pipeline uses. The generator
// half (generator_loss) moves the particles; the critic half (critic_loss) trains the fake score,
// a residual MLP around the teacher. Prints the distance to the target before and after.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "retort/core/runtime.h"
#include "retort/distill/objective.h"
#include "retort/eval/metrics.h"
#include "retort/generators/generator.h"
#include "retort/models/fake_score.h"
#include "retort/models/gaussian_mixture.h"

int main(int argc, char** argv) {
  using namespace retort;
  const int steps = argc > 1 ? std::atoi(argv[1]) : 1500;
  std::fprintf(stderr, "%s\n", apply_runtime(RuntimeOptions{}).c_str());  // retort's thread policy
  torch::manual_seed(0);
  Rng rng(0);
  Schedule schedule;
  const auto target = GaussianMixture::ring(8, 2, 2.0, 0.1, false);
  auto teacher = std::make_shared<MixtureTeacher>(target, schedule);
  ParticleGenerator particles(512, 2, 1.0, std::vector<int64_t>{}, std::vector<double>{}, rng);
  MlpOptions mlp;
  mlp.dim = 2;
  DeltaFake fake(teacher, mlp, schedule);
  auto vsd = make_objective("vsd", ObjectiveOptions{}, schedule);
  const Models models{teacher.get(), fake.get(), nullptr};
  torch::optim::AdamW gen_opt(particles->parameters(), torch::optim::AdamWOptions(1e-2).weight_decay(0));
  torch::optim::AdamW fake_opt(trainable_parameters(*fake), torch::optim::AdamWOptions(1e-3).weight_decay(0));
  const auto reference = target.sample(2000, rng);
  auto score = [&](const char* when) {
    Rng eval_rng(1);
    const auto m = evaluate_samples(target, particles->particles.detach(), reference, eval_rng);
    std::printf("%s: MMD %.4f, %.0f%% of particles within 3 sigma of a mode\n", when, m.mmd, 100 * m.in_3sigma);
  };
  score("before");
  for (int step = 0; step < steps; ++step) {
    auto draw = [&](const torch::Tensor& x0) {
      return NoiseDraw{0.02 + 0.96 * rng.rand({x0.size(0)}), rng.randn(x0.sizes())};
    };
    // The critic half: the fake score learns the particles' own noisy score.
    CriticBatch critic;
    critic.x0 = particles->draw(256, rng).x0.detach();
    critic.cond = Cond::null(256, torch::kCPU);
    critic.noise = draw(critic.x0);
    auto critic_loss = vsd->critic_loss(critic, models);
    fake_opt.zero_grad();
    critic_loss.backward();
    fake_opt.step();
    // The generator half: its gradient w(t)(eps_fake - eps_teacher) on the particles.
    auto batch = particles->draw(256, rng);
    auto loss = vsd->generator_loss(batch.x0, batch.cond, draw(batch.x0), models);
    gen_opt.zero_grad();
    loss.backward();
    gen_opt.step();
  }
  score("after");
  return 0;
}
