// The training loop: resuming from a checkpoint reaches the same weights as an uninterrupted run,
// and the non-finite guard stops a diverging run with a clear error.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "retort/run/kept_result.h"
#include "retort/io/fingerprint.h"
#include "retort/core/error.h"
#include "retort/distill/objective.h"
#include "retort/models/fake_score.h"
#include "retort/models/gaussian_mixture.h"
#include "retort/train/distill_loop.h"
#include "test_util.h"

namespace retort {
namespace {

struct LoopSetup {
  Schedule schedule;
  GaussianMixture target = GaussianMixture::ring(4, 2, 2.0, 0.2, false);
  std::shared_ptr<MixtureTeacher> teacher = std::make_shared<MixtureTeacher>(target, schedule);
  DeltaFake fake{nullptr};
  ParticleGenerator gen{nullptr};
  std::unique_ptr<Objective> obj;
  LoopSetup(const std::string& method, double lr) {
    torch::manual_seed(0);
    MlpOptions o;
    o.hidden = 32;
    o.blocks = 1;
    fake = DeltaFake(teacher, o, schedule);
    Rng init(0);
    gen = ParticleGenerator(64, 2, 1.0, std::vector<int64_t>{}, std::vector<double>{}, init);
    obj = make_objective(method, {}, schedule);
    opts.batch = 32;
    opts.gen_optim.lr = lr;
    opts.progress = false;
    opts.checkpoint_every = 10;
    opts.log_every = 5;
  }
  DistillLoopOptions opts;
  // Returns the loop's training seconds since step 0.
  double run(const std::filesystem::path& dir, int64_t steps, Rng& rng) {
    opts.steps = steps;
    DistillLoop loop(opts, *gen, *obj, Models{teacher.get(), fake.get(), nullptr}, fake.get(), nullptr,
                     schedule, torch::kCPU);
    loop.run(dir, rng, "cfg");
    return loop.seconds();
  }
};

int count_lines(const std::filesystem::path& p) {
  std::ifstream in(p);
  int n = 0;
  std::string l;
  while (std::getline(in, l)) ++n;
  return n;
}

TEST(DistillLoop, ResumeReachesSameWeightsAsUninterruptedRun) {
  test::TempDir a("resume-a"), b("resume-b");
  LoopSetup full("vsd", 1e-2);
  Rng rng_full(42);
  full.run(a.path, 40, rng_full);

  // "Killed" after step 20: a process that stopped there, then a fresh process that resumes.
  {
    LoopSetup first("vsd", 1e-2);
    Rng rng(42);
    first.run(b.path, 20, rng);
  }
  LoopSetup second("vsd", 1e-2);
  Rng rng_other(7);  // the checkpoint's RNG state must replace this
  second.run(b.path, 40, rng_other);

  EXPECT_TRUE(torch::equal(full.gen->particles, second.gen->particles));
  auto pf = full.fake->parameters(), ps = second.fake->parameters();
  for (size_t i = 0; i < pf.size(); ++i) EXPECT_TRUE(torch::equal(pf[i], ps[i]));
  EXPECT_EQ(count_lines(b.path / "metrics.jsonl"), 8);  // steps 5..40, none twice
  EXPECT_EQ(count_lines(b.path / "metrics.csv"), 9);
  // The check is not vacuous: training moved the particles.
  Rng init(0);
  EXPECT_GT((full.gen->particles - init.randn({64, 2})).abs().max().item<double>(), 0.05);
}

// A continued run's seconds count every invocation since step 0 (bench-distill's train_seconds
// and bench-gmm's seconds are these): the checkpoint carries them.
TEST(DistillLoop, SecondsCarryOverAResume) {
  test::TempDir d("seconds");
  LoopSetup s("vsd", 1e-2);
  Rng rng(3);
  const double first = s.run(d.path, 20, rng);
  const double continued = s.run(d.path, 21, rng);
  EXPECT_GT(first, 0.0);
  EXPECT_GT(continued, first) << "the continuation counted only its own update";
  // The logged column too: rows at steps 5..20, then 21; nondecreasing across the resume.
  std::ifstream in(d.path / "metrics.jsonl");
  double last = 0.0;
  int rows = 0;
  for (std::string line; std::getline(in, line); ++rows) {
    auto j = nlohmann::json::parse(line);
    ASSERT_TRUE(j.contains("seconds")) << line;
    EXPECT_GE(j["seconds"].get<double>(), last) << line;
    last = j["seconds"].get<double>();
  }
  EXPECT_EQ(rows, 5);
  EXPECT_DOUBLE_EQ(last, continued);
}

// on_update (bench-step's timer) sees every update of this invocation once, in order, and their
// seconds add up to no more than the loop's own.
TEST(DistillLoop, OnUpdateSeesEachUpdateOnce) {
  test::TempDir d("on-update");
  LoopSetup s("vsd", 1e-2);
  std::vector<int64_t> steps;
  double sum = 0.0;
  s.opts.on_update = [&](int64_t step, double seconds) {
    steps.push_back(step);
    EXPECT_GT(seconds, 0.0);
    sum += seconds;
  };
  Rng rng(3);
  const double first = s.run(d.path, 10, rng);
  EXPECT_EQ(steps, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_LE(sum, first);
  steps.clear();
  s.run(d.path, 13, rng);  // resumed at 10
  EXPECT_EQ(steps, (std::vector<int64_t>{10, 11, 12}));
}

// A checkpoint written before a scalar existed loads and leaves the scalar as it was.
TEST(Checkpoint, MissingScalarIsLeftAsItWas) {
  test::TempDir d("ckpt-scalar");
  Rng rng(1);
  torch::nn::Linear lin(2, 2);
  CheckpointParts old_parts;
  old_parts.modules["m"] = lin.get();
  save_checkpoint(d.path / "old.pt", old_parts, 7, rng, "cfg");
  double seconds = -1.0, other = 2.5;
  CheckpointParts parts = old_parts;
  parts.scalars["seconds"] = &seconds;
  EXPECT_EQ(load_checkpoint(d.path / "old.pt", parts, rng, "cfg"), 7);
  EXPECT_EQ(seconds, -1.0);
  parts.scalars["seconds"] = &other;
  save_checkpoint(d.path / "new.pt", parts, 8, rng, "cfg");
  parts.scalars["seconds"] = &seconds;
  EXPECT_EQ(load_checkpoint(d.path / "new.pt", parts, rng, "cfg"), 8);
  EXPECT_EQ(seconds, 2.5);
}

// A warm start reads weights whatever config wrote them, skips modules the file lacks, and refuses
// a module of another shape (Module::load alone would take the stored shape silently).
TEST(Checkpoint, WeightsLoadAcrossConfigsButNotAcrossShapes) {
  test::TempDir d("ckpt-weights");
  Rng rng(1);
  torch::nn::Linear a(2, 3);
  CheckpointParts parts;
  parts.modules["a"] = a.get();
  save_checkpoint(d.path / "c.pt", parts, 42, rng, "some config");
  torch::nn::Linear same(2, 3), absent(2, 3), wider(2, 4);
  std::vector<std::string> loaded;
  EXPECT_EQ(load_checkpoint_weights(d.path / "c.pt", {{"a", same.get()}, {"b", absent.get()}}, &loaded), 42);
  EXPECT_EQ(loaded, std::vector<std::string>{"a"});
  EXPECT_TRUE(torch::equal(same->weight, a->weight));
  EXPECT_TRUE(torch::equal(same->bias, a->bias));
  try {
    load_checkpoint_weights(d.path / "c.pt", {{"a", wider.get()}});
    ADD_FAILURE() << "a module of another shape was loaded";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("a.bias is [4] here but [3] in the checkpoint"), std::string::npos) << e.what();
  }
}

TEST(DistillLoop, CheckpointFromAnotherConfigIsRefused) {
  test::TempDir d("ckpt-config");
  LoopSetup s("vsd", 1e-2);
  Rng rng(1);
  s.run(d.path, 10, rng);
  DistillLoop loop(s.opts, *s.gen, *s.obj, Models{s.teacher.get(), s.fake.get(), nullptr}, s.fake.get(), nullptr,
                   s.schedule, torch::kCPU);
  EXPECT_THROW(loop.run(d.path, rng, "another config"), IoError);
}

// What may change between a checkpoint and the run that continues it: [T] steps and [runtime].
TEST(SameRunButLength, IgnoresOnlyTheLengthAndTheRuntime) {
  const std::string base = "# teacher abc\n[distill]\nsteps = 10\nlr = 0.001\n[runtime]\nthreads = 1\n";
  auto same = same_run_but_length(base, "distill");
  EXPECT_TRUE(same(base));
  EXPECT_TRUE(same("# teacher abc\n[distill]\nsteps = 20\nlr = 0.001\n[runtime]\nthreads = 2\n"));
  EXPECT_TRUE(same("# teacher abc\n[distill]\nlr = 0.001\n"));
  EXPECT_FALSE(same("# teacher abc\n[distill]\nsteps = 10\nlr = 0.002\n[runtime]\nthreads = 1\n"));
  EXPECT_FALSE(same("# teacher xyz\n[distill]\nsteps = 10\nlr = 0.001\n[runtime]\nthreads = 1\n"))
      << "the comment lines (the teacher's fingerprint) are part of the run";
  EXPECT_FALSE(same_run_but_length(base, "train")("# teacher abc\n[distill]\nsteps = 20\nlr = 0.001\n"))
      << "only the named table's steps may change";
  EXPECT_FALSE(same("not = toml = at all"));
}

// A key added since a run began, at the value that reproduces that run, does not stop it resuming.
TEST(SameRunButLength, AcceptsANewKeyAtItsOldBehaviour) {
  const std::string old_run = "[train]\nsteps = 10\nlr = 0.001\n";
  EXPECT_TRUE(same_run_but_length("[train]\nregressor = false\nsteps = 20\nlr = 0.001\n", "train")(old_run));
  EXPECT_FALSE(same_run_but_length("[train]\nregressor = true\nsteps = 20\nlr = 0.001\n", "train")(old_run));
  // r1_weight, added later: off, it and its r1_sigma change nothing; on, it is another run.
  const std::string old_student = "[distill]\nsteps = 10\nlr = 0.001\n";
  EXPECT_TRUE(same_run_but_length("[distill]\nsteps = 10\nlr = 0.001\nr1_weight = 0.0\nr1_sigma = 0.05\n",
                                  "distill")(old_student));
  EXPECT_FALSE(same_run_but_length("[distill]\nsteps = 10\nlr = 0.001\nr1_weight = 10.0\nr1_sigma = 0.05\n",
                                   "distill")(old_student));
  // The regression keys, no longer read by distill-nvs: off in the old run, absent in the new one.
  const std::string with_regression = "[distill]\nsteps = 10\nregression_weight = 0.0\nregression_pairs = 1000\n"
                                      "regression_batch = 0\nregression_teacher_steps = 50\n";
  EXPECT_TRUE(same_run_but_length("[distill]\nsteps = 10\n", "distill")(with_regression));
  EXPECT_FALSE(same_run_but_length("[distill]\nsteps = 10\n", "distill")(
      "[distill]\nsteps = 10\nregression_weight = 0.5\nregression_pairs = 1000\n"));
  // With the switch on, the keys beside it still count.
  EXPECT_FALSE(same_run_but_length("[distill]\nr1_weight = 1.0\nr1_sigma = 0.1\n", "distill")(
      "[distill]\nr1_weight = 1.0\nr1_sigma = 0.05\n"));
}

TEST(DistillLoop, NonFiniteGuardStopsDivergingRun) {
  test::TempDir d("nonfinite");
  LoopSetup s("sds", 1e-2);
  {
    torch::NoGradGuard ng;
    s.gen->particles[0][0] = std::numeric_limits<float>::quiet_NaN();
  }
  Rng rng(1);
  try {
    s.run(d.path, 5, rng);
    FAIL() << "no throw";
  } catch (const NonFiniteError& e) {
    EXPECT_NE(std::string(e.what()).find("step 0"), std::string::npos) << e.what();
  }
}

// An objective whose generator loss is NaN on the listed calls (0-based), the inner one otherwise.
class NanOnCalls : public Objective {
 public:
  NanOnCalls(std::unique_ptr<Objective> inner, std::set<int64_t> calls)
      : Objective(inner->name(), inner->options(), Schedule()), inner_(std::move(inner)), calls_(std::move(calls)) {}
  ObjectiveNeeds needs() const override { return inner_->needs(); }
  torch::Tensor generator_loss(const torch::Tensor& x0, const Cond& cond, const NoiseDraw& n, const Models& m) override {
    auto loss = inner_->generator_loss(x0, cond, n, m);
    return calls_.count(call_++) ? loss * std::numeric_limits<float>::quiet_NaN() : loss;
  }
  torch::Tensor critic_loss(const CriticBatch& b, const Models& m) override { return inner_->critic_loss(b, m); }

 private:
  std::unique_ptr<Objective> inner_;
  std::set<int64_t> calls_;
  int64_t call_ = 0;
};

// With max_nonfinite_skips, a refused step leaves the weights as they were (its optimiser steps are
// skipped) and the run goes on; one refusal more than allowed in a row stops it, saying how many.
TEST(DistillLoop, NonFiniteGuardSkipsUpToItsLimitThenStops) {
  auto particles_after = [](int64_t steps, std::set<int64_t> nan_calls, int64_t max_skips, const std::string& name) {
    test::TempDir d(name);
    LoopSetup s("vsd", 1e-2);
    s.obj = std::make_unique<NanOnCalls>(std::move(s.obj), nan_calls);
    s.opts.nonfinite.max_skips = max_skips;
    Rng rng(1);
    s.run(d.path, steps, rng);
    return s.gen->particles.detach().clone();
  };
  // Step 2 refused: the particles after 3 steps are those after 2.
  const auto refused = particles_after(3, {2}, 1, "nonfinite-skip");
  EXPECT_TRUE(torch::isfinite(refused).all().item<bool>());
  EXPECT_TRUE(torch::equal(refused, particles_after(2, {}, 1, "nonfinite-two")));
  EXPECT_FALSE(torch::equal(refused, particles_after(3, {}, 1, "nonfinite-three")));
  // Two refusals in a row allowed, then training goes on to the end.
  EXPECT_TRUE(torch::isfinite(particles_after(8, {3, 4}, 2, "nonfinite-two-in-a-row")).all().item<bool>());
  try {
    particles_after(8, {3, 4, 5}, 2, "nonfinite-three-in-a-row");
    FAIL() << "no throw";
  } catch (const NonFiniteError& e) {
    EXPECT_NE(std::string(e.what()).find("step 5: non-finite generator loss in vsd (nan): 3 steps in a row refused "
                                         "(max_nonfinite_skips = 2)"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace retort

namespace retort {
namespace {

// Benchmarks keep a finished row only when it was made with the same config (and teacher).
TEST(KeptResult, OnlyRowsOfTheSameConfigAreKept) {
  test::TempDir tmp("kept-result");
  const auto path = tmp.path / "result.json";
  EXPECT_TRUE(kept_result(path, "a").is_null());  // none yet
  keep_result(path, nlohmann::json{{"fid", 1.5}}, "a\n# teacher t: 10 bytes");
  auto kept = kept_result(path, "a\n# teacher t: 10 bytes");
  ASSERT_TRUE(kept.is_object());
  EXPECT_EQ(kept["fid"].get<double>(), 1.5);
  EXPECT_FALSE(kept.contains("config"));
  EXPECT_TRUE(kept_result(path, "a\n# teacher t: 11 bytes").is_null());  // the teacher changed
  std::ofstream(path) << "{ truncated";
  EXPECT_TRUE(kept_result(path, "a").is_null());
}

// A file's fingerprint changes with any byte and not with the copy.
TEST(FileFingerprint, NamesTheContents) {
  test::TempDir tmp("fingerprint");
  std::ofstream(tmp.path / "a") << "weights";
  std::ofstream(tmp.path / "b") << "weights";
  std::ofstream(tmp.path / "c") << "weighty";
  auto f = [&](const char* n) {
    auto s = file_fingerprint(tmp.path / n);
    return s.substr(s.find(':'));
  };
  EXPECT_EQ(f("a"), f("b"));
  EXPECT_NE(f("a"), f("c"));
  EXPECT_NE(file_fingerprint(tmp.path / "none").find("missing"), std::string::npos);
}

}  // namespace
}  // namespace retort
