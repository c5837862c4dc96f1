// Malformed or contradictory bench configs give one clear ConfigError naming the file and key.
#include <gtest/gtest.h>

#include "retort/bench/gmm_config.h"
#include "retort/core/error.h"

namespace retort {
namespace {

const char* kValid = R"(
seed = 3
[target]
preset = "modes"
[[target.mode]]
mean = [0.0, 1.0]
cov = [[0.1, 0.02], [0.02, 0.2]]
weight = 2
[[target.mode]]
mean = [1.0, -1.0]
std = 0.3
[defaults]
steps = 10
[[run]]
method = "vsd"
generator = "particles"
[[run]]
method = "softened_rkl"
generator = "network"
lr = 5e-4
)";

GmmBenchConfig parse(const std::string& text) {
  return parse_gmm_bench_config(ConfigNode::from_string(text, "test.toml"));
}

// The error message of parsing `text`, or "" if it parsed.
std::string error_of(const std::string& text) {
  try {
    parse(text);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

std::string with(const std::string& from, const std::string& to) {
  std::string s = kValid;
  auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return s.replace(pos, from.size(), to);
}

TEST(Config, ValidConfigParsesWithDefaultsAndOverrides) {
  auto cfg = parse(kValid);
  EXPECT_EQ(cfg.seed, 3u);
  ASSERT_EQ(cfg.components.size(), 2u);
  EXPECT_DOUBLE_EQ(cfg.components[1].cov[1][1], 0.09);
  ASSERT_EQ(cfg.runs.size(), 2u);
  EXPECT_EQ(cfg.runs[0].name, "vsd-particles");
  EXPECT_EQ(cfg.runs[1].loop.steps, 10);  // from [defaults]
  EXPECT_DOUBLE_EQ(cfg.runs[1].loop.gen_optim.lr, 5e-4);
  EXPECT_NE(cfg.resolved.find("critic_steps"), std::string::npos);  // defaults are recorded
  EXPECT_NE(cfg.runs[0].config_text, cfg.runs[1].config_text);
}

TEST(Config, ErrorsNameFileKeyAndValue) {
  struct Case {
    std::string text, must_contain;
  };
  std::vector<Case> cases = {
      {with("method = \"vsd\"", "method = \"vds\""), "run[0].method: unknown value 'vds'; known: sds, vsd"},
      {with("lr = 5e-4", "lr = \"fast\""), "run[1].lr: expected a number"},
      {with("lr = 5e-4", "lr = -1.0"), "run[1].lr: -1 is out of range"},
      {with("lr = 5e-4", "lrr = 1e-3"), "run[1].lrr: unknown key"},
      {with("steps = 10", "steps = 10\nsteps_typo = 3"), "defaults.steps_typo: unknown key"},
      {with("cov = [[0.1, 0.02], [0.02, 0.2]]", "cov = [[0.1, 0.5], [0.5, 0.2]]"), "mode[0].cov is not positive definite"},
      {with("cov = [[0.1, 0.02], [0.02, 0.2]]", "cov = [[0.1, 0.02]]"), "target.mode[0].cov: must be 2x2"},
      {with("mean = [1.0, -1.0]", "mean = [1.0, -1.0, 2.0]"), "mode[1].mean has 3 entries"},
      {with("weight = 2", "weight = 0"), "target.mode[0].weight: 0 is out of range"},
      {with("lr = 5e-4", "cfg_scale = 7.5"), "run[1].cfg_scale: 7.5 needs a conditional target"},
      {with("method = \"vsd\"", "method = \"asd\"\ngamma = -1.0"), "run[0].gamma: -1 <= -1"},
      {with("method = \"vsd\"", "method = \"dmd2\""), "run[0].gan_weight"},
      {with("lr = 5e-4", "name = \"vsd-particles\""), "run[1].name: 'vsd-particles' is used by two runs"},
      {with("lr = 5e-4", "fake = \"lora\""), "run[1].fake: 'lora' needs a network teacher"},
      {with("lr = 5e-4", "t_min = 0.9\nt_max = 0.5"), "run[1].t_min: 0.9 is above t_max"},
      {with("seed = 3", "seed = 3\n[runtime]\ndevice = \"tpu\""), "runtime.device: 'tpu' is not a device"},
      {with("seed = 3", "seed = 3 ="), "test.toml:2:"},  // syntax error with line number
      {"seed = 1\n", "run: no [[run]] given"},
  };
  for (const auto& c : cases) {
    auto msg = error_of(c.text);
    EXPECT_NE(msg.find(c.must_contain), std::string::npos) << "expected '" << c.must_contain << "' in: " << msg;
    EXPECT_NE(msg.find("test.toml"), std::string::npos) << msg;
  }
}

TEST(Config, MissingFileIsAClearError) {
  try {
    load_gmm_bench_config("/nonexistent/x.toml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/x.toml: config file not found"), std::string::npos);
  }
}

TEST(Config, ShippedDefaultConfigIsValid) {
  auto cfg = load_gmm_bench_config(std::string(RETORT_SOURCE_DIR) + "/configs/gmm-ring8.toml");
  EXPECT_GE(cfg.runs.size(), 8u);
  EXPECT_EQ(cfg.components.size(), 8u);
}

}  // namespace
}  // namespace retort
