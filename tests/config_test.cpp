// Malformed or contradictory bench configs give one clear ConfigError naming the file and key.
#include <gtest/gtest.h>

#include <fstream>

#include "retort/bench/gmm_config.h"
#include "retort/core/error.h"
#include "retort/core/runtime_config.h"
#include "test_util.h"

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


// --set: KEY=VALUE applied to the parsed tree before it is read, so it is checked and recorded.
TEST(Config, OverridesAreAppliedBeforeReading) {
  auto root = ConfigNode::from_string("[a]\nx = 1\n[[run]]\ny = 2\n[[run]]\ny = 3\n", "o.toml",
                                      {"a.x=5", "b.c.d=true", "a.name=dmd2", "a.list=[1, 2]", "run.1.y=7", "a.q=\"7\""});
  auto a = root.table("a");
  EXPECT_EQ(a.integer("x", 0, 0, 10), 5);
  EXPECT_EQ(a.string("name", ""), "dmd2");  // not TOML: taken as text
  EXPECT_EQ(a.numbers("list", {}).size(), 2u);
  EXPECT_EQ(a.string("q", ""), "7");        // quoted: a string
  EXPECT_TRUE(root.table("b").table("c").boolean("d", false));
  auto runs = root.tables("run");
  EXPECT_EQ(runs[0].integer("y", 0, 0, 10), 2);
  EXPECT_EQ(runs[1].integer("y", 0, 0, 10), 7);
  EXPECT_NE(root.resolved_toml().find("x = 5"), std::string::npos);
  auto error = [](const std::string& set) {
    return test::error_of<ConfigError>([&] { ConfigNode::from_string("[a]\nx = 1\n[[run]]\ny = 2\n", "o.toml", {set}); });
  };
  EXPECT_NE(error("a.x").find("expected KEY=VALUE"), std::string::npos);
  EXPECT_NE(error("a.x.z=1").find("'x' is a value, not a table"), std::string::npos);
  EXPECT_NE(error("run.3.y=1").find("run has 1 tables"), std::string::npos);
  EXPECT_NE(error("run.y=1").find("give an index"), std::string::npos);
  EXPECT_NE(error("a..x=1").find("empty key component"), std::string::npos);
  // A value out of range arrives at the reader like the file's own.
  auto bad = ConfigNode::from_string("[a]\nx = 1\n", "o.toml", {"a.x=50"});
  auto t = bad.table("a");
  EXPECT_THROW(t.integer("x", 0, 0, 10), ConfigError);
}

// `base = "FILE"`: top-level keys and whole tables the file does not set come from FILE.
TEST(Config, BaseFileFillsWhatTheFileDoesNotSet) {
  test::TempDir dir("config-base");
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir.path / name) << text;
    return dir.path / name;
  };
  write("root.toml", "seed = 1\n[defaults]\nsteps = 9\n[target]\npreset = \"ring\"\nmodes = 8\n");
  std::filesystem::create_directories(dir.path / "sub");
  write("sub/mid.toml", "base = \"../root.toml\"\nseed = 2\n");
  auto leaf = write("sub/leaf.toml", "base = \"mid.toml\"\n[target]\npreset = \"modes\"\n");
  auto root = ConfigNode::from_file(leaf, {"defaults.steps=11"});
  EXPECT_EQ(root.integer("seed", 0, 0, 9), 2);  // the nearer file wins
  EXPECT_EQ(root.table("defaults").integer("steps", 0, 0, 99), 11);  // --set applies after the merge
  auto target = root.table("target");
  EXPECT_EQ(target.string("preset", ""), "modes");
  EXPECT_FALSE(target.has("modes"));  // a table the file sets is not merged with the base's
  root.finish();
  EXPECT_EQ(root.resolved_toml().find("base"), std::string::npos);

  auto error = [&](const std::string& text) {
    return test::error_of<ConfigError>([&] { ConfigNode::from_file(write("bad.toml", text)); });
  };
  EXPECT_NE(error("base = 3\n").find("bad.toml: base: expected the path of a config file"), std::string::npos);
  EXPECT_NE(error("base = \"nope.toml\"\n").find("bad.toml: base: " + (dir.path / "nope.toml").string() + " not found"),
            std::string::npos);
  write("a.toml", "base = \"b.toml\"\n");
  write("b.toml", "base = \"a.toml\"\n");
  EXPECT_NE(error("base = \"a.toml\"\n").find("(a cycle)"), std::string::npos);
  EXPECT_NE(error("base = \"bad.toml\"\n").find("(a cycle)"), std::string::npos);
  write("broken.toml", "x = = 1\n");
  EXPECT_NE(error("base = \"broken.toml\"\n").find("broken.toml:1:"), std::string::npos);
}

struct Toy {
  double rate = 0.5;
  int64_t count = 3;
  bool on = true;
  std::string kind = "a";
  Weighting weighting = Weighting::Sigma2;
  std::vector<double> list = {1, 2};
};

const OptionTable<Toy>& toy_table() {
  static const auto t = [] {
    OptionTable<Toy> t;
    t.number("rate", &Toy::rate, 0, 1, "a rate")
        .integer("count", &Toy::count, 1, 9, "a count")
        .flag("on", &Toy::on, "a switch")
        .choice("kind", &Toy::kind, {"a", "b"}, "a | b")
        .named("weighting", &Toy::weighting, weighting_names(), "an enum")
        .numbers("list", &Toy::list, 0, 5, "a list")
        .check([](ConfigNode& n, const Toy& x) {
          if (x.count > 5 && !x.on) n.fail("count", "above 5 needs on");
        });
    return t;
  }();
  return t;
}

// One row drives reading (defaults from the struct, ranges, choices, checks), markdown and JSON.
TEST(Options, OneRowReadsPrintsAndRoundTrips) {
  Toy x;
  auto root = ConfigNode::from_string("[t]\nrate = 0.25\nweighting = \"uniform\"\n", "t.toml");
  auto n = root.table("t");
  toy_table().read(n, x);
  EXPECT_DOUBLE_EQ(x.rate, 0.25);
  EXPECT_EQ(x.count, 3);
  EXPECT_EQ(x.weighting, Weighting::Uniform);
  EXPECT_NE(root.resolved_toml().find("count = 3"), std::string::npos);  // defaults recorded
  auto error = [](const std::string& toml) {
    return test::error_of<ConfigError>([&] {
      Toy y;
      auto r = ConfigNode::from_string(toml, "t.toml");
      auto t = r.table("t");
      toy_table().read(t, y);
      r.finish();
    });
  };
  EXPECT_EQ(error("[t]\nrate = 2\n"), "t.toml: t.rate: 2 is out of range [0, 1]");
  EXPECT_EQ(error("[t]\nkind = \"c\"\n"), "t.toml: t.kind: unknown value 'c'; known: a, b");
  EXPECT_EQ(error("[t]\nlist = [1, 9]\n"), "t.toml: t.list: 9 is out of range [0, 5]");
  EXPECT_EQ(error("[t]\ncount = 7\non = false\n"), "t.toml: t.count: above 5 needs on");
  EXPECT_EQ(error("[t]\ncuont = 7\n"), "t.toml: t.cuont: unknown key (misspelt, or not used by this command)");
  const auto md = toy_table().markdown();
  EXPECT_NE(md.find("| `rate` | `0.5` | [0, 1] | a rate |"), std::string::npos) << md;
  EXPECT_NE(md.find("| `weighting` | `\"sigma2\"` | uniform, sigma2, alpha_sigma | an enum |"), std::string::npos) << md;
  Toy z;
  z.rate = 0.125;
  z.kind = "b";
  z.weighting = Weighting::AlphaSigma;
  z.list = {3};
  Toy back;
  toy_table().from_json(toy_table().to_json(z), back);
  EXPECT_DOUBLE_EQ(back.rate, 0.125);
  EXPECT_EQ(back.kind, "b");
  EXPECT_EQ(back.weighting, Weighting::AlphaSigma);
  EXPECT_EQ(back.list, std::vector<double>{3});
  EXPECT_EQ(toy_table().differences(Toy{}, z), "`rate = 0.125`, `kind = \"b\"`, `weighting = \"alpha_sigma\"`, `list = [3]`");
}

// The README's numbers agree with the code: [runtime] threads defaults to 1, ASD's gamma to -0.5
// (2-D) and -0.75 in generate3d's objective defaults.
TEST(Options, DefaultsComeFromTheStructs) {
  auto root = ConfigNode::from_string("", "e.toml");
  EXPECT_EQ(read_runtime_options(root.table("runtime")).torch_threads, RuntimeOptions{}.torch_threads);
  EXPECT_NE(runtime_option_table().markdown().find("| `threads` | `1` |"), std::string::npos);
  EXPECT_DOUBLE_EQ(ObjectiveOptions{}.gamma, -0.5);
  EXPECT_NE(gmm_run_option_table().markdown().find("| `gamma` | `-0.5` |"), std::string::npos);
}

}  // namespace
}  // namespace retort
