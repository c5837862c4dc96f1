// End-to-end on a small mixture: each method trained against the exact teacher must reach the
// coverage and distances it should. Thresholds sit between what a working implementation reaches
// (README table, same settings) and what a broken one gives: e.g. an untrained generator (N(0,1)
// particles) has MMD ~0.3 and covers no mode properly; SDS with a wrong sign diverges.
#include <gtest/gtest.h>

#include <fstream>

#include "retort/bench/gmm_bench.h"
#include "test_util.h"

namespace retort {
namespace {

// 4 modes on a ring; short runs so the whole suite stays in a few minutes on 2 cores.
const std::string kBase = R"(
seed = 0
[target]
preset = "ring"
modes = 4
radius = 2.0
std = 0.15
[eval]
samples = 1000
reference = 2000
[defaults]
steps = 600
batch = 128
critic_steps = 2
particles = 256
lr = 1e-2
log_every = 100
checkpoint_every = 0
)";

struct Outcome {
  nlohmann::json result;
  double spread;  // mean squared Mahalanobis distance to the nearest mode (exact samples: ~dim = 2)
};

Outcome run(const std::string& run_toml, const std::string& name) {
  auto cfg = parse_gmm_bench_config(ConfigNode::from_string(kBase + "[[run]]\n" + run_toml, name + ".toml"));
  test::TempDir dir("e2e-" + name);
  auto result = run_gmm_single(cfg, cfg.runs[0], dir.path, false);
  Outcome o{result, 0.0};
  if (result.value("status", "") == "ok") {
    torch::Tensor x;
    torch::load(x, (dir.path / "samples.pt").string());
    o.spread = GaussianMixture(cfg.components).mahalanobis2(x).amin(1).mean().item<double>();
  }
  return o;
}

void expect_matches_target(const Outcome& o, const std::string& what, double max_mmd, double min_spread) {
  ASSERT_EQ(o.result.value("status", ""), "ok") << what << ": " << o.result.dump();
  EXPECT_EQ(o.result["modes_covered"].get<int64_t>(), 4) << what;
  EXPECT_LT(o.result["mass_tv"].get<double>(), 0.15) << what;
  EXPECT_LT(o.result["mmd"].get<double>(), max_mmd) << what;
  EXPECT_GT(o.result["in_3sigma"].get<double>(), 0.85) << what;
  EXPECT_GT(o.spread, min_spread) << what << ": spread collapsed";
  EXPECT_LT(o.spread, 4.0) << what << ": spread too wide";
}

// SDS pulls particles onto the modes and their spread collapses (mode seeking, no entropy term).
TEST(EndToEnd, SdsParticlesCollapseOntoModes) {
  auto o = run("method = \"sds\"\ngenerator = \"particles\"\n", "sds");
  ASSERT_EQ(o.result.value("status", ""), "ok");
  EXPECT_EQ(o.result["modes_covered"].get<int64_t>(), 4);
  EXPECT_GT(o.result["in_3sigma"].get<double>(), 0.95);
  EXPECT_LT(o.spread, 0.5) << "SDS particles should collapse well inside one sigma";
}

// VSD, ASD and DMD keep the target's spread.
TEST(EndToEnd, VsdParticlesMatchTarget) {
  expect_matches_target(run("method = \"vsd\"\ngenerator = \"particles\"\n", "vsd"), "vsd", 0.02, 1.0);
}

TEST(EndToEnd, AsdParticlesMatchTarget) {
  expect_matches_target(run("method = \"asd\"\ngenerator = \"particles\"\ngamma = -0.5\n", "asd"), "asd", 0.02, 1.0);
}

TEST(EndToEnd, DmdParticlesMatchTarget) {
  expect_matches_target(run("method = \"dmd\"\ngenerator = \"particles\"\n", "dmd"), "dmd", 0.02, 1.0);
}

TEST(EndToEnd, SoftenedRklNetworkMatchesTarget) {
  expect_matches_target(
      run("method = \"softened_rkl\"\ngenerator = \"network\"\nlr = 1e-3\nsteps = 800\n", "srkl"), "softened_rkl",
      0.03, 1.0);
}

}  // namespace
}  // namespace retort
