#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "retort/core/error.h"
#include "retort/io/average_weights.h"
#include "retort/io/safetensors.h"
#include "test_util.h"

namespace retort {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

void write_raw(const fs::path& p, const Bytes& b) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

Bytes read_raw(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

// A safetensors file from a header text and a data buffer, built by hand.
Bytes file_bytes(const std::string& header, const Bytes& data) {
  Bytes b;
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) b.push_back(uint8_t(n >> (8 * i)));
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), data.begin(), data.end());
  return b;
}


bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(Safetensors, RoundTripEveryDtype) {
  test::TempDir tmp("st-dtypes");
  torch::manual_seed(0);
  std::map<std::string, torch::Tensor> t;
  auto r = torch::randn({3, 5});
  t["f32"] = r;
  t["f64"] = r.to(torch::kFloat64) * 1e100;
  t["f16"] = r.to(torch::kFloat16);
  t["bf16"] = r.to(torch::kBFloat16);
  t["i64"] = torch::tensor({INT64_MIN, int64_t(-1), INT64_MAX});
  t["i32"] = torch::randint(-100000, 100000, {4, 1, 2}, torch::kInt32);
  t["i16"] = torch::randint(-30000, 30000, {7}, torch::kInt16);
  t["i8"] = torch::randint(-128, 127, {2, 2}, torch::kInt8);
  t["u8"] = torch::randint(0, 255, {9}, torch::kUInt8);
  t["bool"] = torch::rand({6}) > 0.5;
  t["scalar"] = torch::tensor(3.25);
  t["empty"] = torch::zeros({0, 4});
  t["strided"] = torch::arange(12, torch::kFloat32).view({3, 4}).t();  // non-contiguous
  save_safetensors(tmp.path / "all.safetensors", t, {{"step", "42"}, {"note", "héllo"}});
  EXPECT_FALSE(fs::exists(tmp.path / "all.safetensors.tmp"));

  std::map<std::string, std::string> meta;
  auto back = load_safetensors(tmp.path / "all.safetensors", &meta);
  EXPECT_EQ(meta, (std::map<std::string, std::string>{{"step", "42"}, {"note", "héllo"}}));
  ASSERT_EQ(back.size(), t.size());
  for (const auto& [name, v] : t) {
    ASSERT_TRUE(back.count(name)) << name;
    EXPECT_EQ(back[name].scalar_type(), v.scalar_type()) << name;
    EXPECT_EQ(back[name].sizes(), v.sizes()) << name;
    EXPECT_TRUE(torch::equal(back[name], v)) << name;
  }
}

// Our writer checked against the format itself, not against our reader.
TEST(Safetensors, WriterFollowsFormat) {
  test::TempDir tmp("st-writer");
  save_safetensors(tmp.path / "w.safetensors",
                   {{"b", torch::tensor({1.0f, 2.0f})}, {"a", torch::tensor({int16_t(-2)}, torch::kInt16).view({1, 1})}},
                   {{"format", "pt"}});
  auto bytes = read_raw(tmp.path / "w.safetensors");
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(bytes[i]) << (8 * i);
  EXPECT_EQ(n % 8, 0u);
  ASSERT_LE(8 + n, bytes.size());
  auto header = nlohmann::json::parse(std::string(bytes.begin() + 8, bytes.begin() + 8 + long(n)));
  EXPECT_EQ(header["__metadata__"]["format"], "pt");
  EXPECT_EQ(header["b"]["dtype"], "F32");
  EXPECT_EQ(header["b"]["shape"], nlohmann::json::array({2}));
  EXPECT_EQ(header["a"]["dtype"], "I16");
  EXPECT_EQ(header["a"]["shape"], nlohmann::json::array({1, 1}));
  Bytes data(bytes.begin() + 8 + long(n), bytes.end());
  auto slice = [&](const std::string& k) {
    auto o = header[k]["data_offsets"];
    return Bytes(data.begin() + o[0].get<long>(), data.begin() + o[1].get<long>());
  };
  EXPECT_EQ(slice("b"), (Bytes{0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0x40}));
  EXPECT_EQ(slice("a"), (Bytes{0xFE, 0xFF}));
  EXPECT_EQ(data.size(), 10u);
}

// A file as another writer would produce it: data out of name order, header padded with spaces.
TEST(Safetensors, LoadsHandBuiltFile) {
  test::TempDir tmp("st-hand");
  std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
      R"("b":{"dtype":"I64","shape":[1,1],"data_offsets":[0,8]},"c":{"dtype":"BF16","shape":[2],"data_offsets":[16,20]},)"
      R"("d":{"dtype":"F16","shape":[],"data_offsets":[20,22]},"e":{"dtype":"BOOL","shape":[2],"data_offsets":[22,24]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  Bytes data = {7, 0, 0, 0, 0, 0, 0, 0,                 // b: int64 7
                0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x20, 0xC0,  // a: 1.0f, -2.5f
                0x80, 0x3F, 0x40, 0xC0,                 // c: bf16 1.0, -3.0
                0x00, 0xC0,                             // d: f16 -2.0
                0x01, 0x00};                            // e: true, false
  write_raw(tmp.path / "hand.safetensors", file_bytes(header, data));
  std::map<std::string, std::string> meta;
  auto t = load_safetensors(tmp.path / "hand.safetensors", &meta);
  EXPECT_EQ(meta.at("format"), "pt");
  ASSERT_EQ(t.size(), 5u);
  EXPECT_TRUE(torch::equal(t["a"], torch::tensor({1.0f, -2.5f})));
  EXPECT_EQ(t["b"].sizes().vec(), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(t["b"].item<int64_t>(), 7);
  EXPECT_EQ(t["c"].scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(t["c"].to(torch::kFloat32), torch::tensor({1.0f, -3.0f})));
  EXPECT_EQ(t["d"].dim(), 0);
  EXPECT_EQ(t["d"].item<float>(), -2.0f);
  EXPECT_TRUE(torch::equal(t["e"], torch::tensor({true, false})));
}

TEST(Safetensors, CorruptFilesAreRejected) {
  test::TempDir tmp("st-corrupt");
  auto p = tmp.path / "x.safetensors";
  auto entry = [](const std::string& dtype, const std::string& shape, const std::string& offsets) {
    return R"({"w":{"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":)" + offsets + "}}";
  };
  auto check = [&](const Bytes& bytes, std::vector<std::string> parts) {
    write_raw(p, bytes);
    auto msg = test::io_error([&] { load_safetensors(p); });
    EXPECT_TRUE(contains(msg, p.string())) << msg;
    for (const auto& part : parts) EXPECT_TRUE(contains(msg, part)) << "'" << part << "' not in: " << msg;
  };
  Bytes four(16, 0);
  // Truncated: data shorter than the header says.
  check(file_bytes(entry("F32", "[4]", "[0,16]"), Bytes(12, 0)), {"w", "truncated"});
  // Header length larger than the file.
  auto big = file_bytes(entry("F32", "[4]", "[0,16]"), four);
  big[0] = 0xFF, big[1] = 0xFF;
  check(big, {"header length"});
  check(Bytes{1, 2, 3}, {"truncated"});
  check(file_bytes("{not json", four), {"JSON"});
  check(file_bytes(entry("F8_E4M3", "[16]", "[0,16]"), four), {"w", "F8_E4M3"});
  check(file_bytes(entry("F32", "[3]", "[0,16]"), four), {"w", "[3]"});
  check(file_bytes(entry("F32", "[-4]", "[0,16]"), four), {"w", "shape"});
  check(file_bytes(R"({"u":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                   four),
        {"overlap", "u", "v"});
  check(file_bytes(R"({"__metadata__":{"k":1}})", {}), {"__metadata__"});
  test::io_error([&] { load_safetensors(tmp.path / "absent.safetensors"); });

  // A real file cut short by a few bytes.
  save_safetensors(p, {{"w", torch::ones({4, 4})}});
  auto bytes = read_raw(p);
  bytes.resize(bytes.size() - 3);
  check(bytes, {"w", "truncated"});
}

// Nested so LibTorch's names have several levels: "trunk.in_proj.base.weight".
struct Proj : torch::nn::Module {
  torch::nn::Linear base{nullptr};
  explicit Proj(int64_t in) { base = register_module("base", torch::nn::Linear(in, 8)); }
};
struct Trunk : torch::nn::Module {
  std::shared_ptr<Proj> in_proj;
  explicit Trunk(int64_t in) {
    in_proj = register_module("in_proj", std::make_shared<Proj>(in));
    register_buffer("scale", torch::rand({8}));
  }
};
struct Net : torch::nn::Module {
  std::shared_ptr<Trunk> trunk;
  torch::nn::Linear head{nullptr};
  explicit Net(int64_t in, bool with_head = true) {
    trunk = register_module("trunk", std::make_shared<Trunk>(in));
    if (with_head) head = register_module("head", torch::nn::Linear(8, 1));
  }
};

std::map<std::string, torch::Tensor> state(torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> s;
  for (const auto& p : m.named_parameters()) s[p.key()] = p.value().detach().clone();
  for (const auto& b : m.named_buffers()) s[b.key()] = b.value().detach().clone();
  return s;
}

TEST(Safetensors, ModuleRoundTrip) {
  test::TempDir tmp("st-module");
  torch::manual_seed(1);
  Net a(4), b(4);
  save_module(tmp.path / "w.safetensors", a, {{"kind", "net"}});
  auto names = load_safetensors(tmp.path / "w.safetensors");
  EXPECT_TRUE(names.count("trunk.in_proj.base.weight"));
  EXPECT_TRUE(names.count("trunk.scale"));
  EXPECT_EQ(names.size(), 5u);  // base.{weight,bias}, scale, head.{weight,bias}
  load_module(tmp.path / "w.safetensors", b);
  auto sa = state(a), sb = state(b);
  for (const auto& [name, v] : sa) EXPECT_TRUE(torch::equal(v, sb.at(name))) << name;
  EXPECT_TRUE(b.trunk->in_proj->base->weight.requires_grad());  // still a trainable parameter

  // A double-precision file loads into a float model, keeping the model's dtype.
  Net c(4);
  c.to(torch::kFloat64);
  save_module(tmp.path / "d.safetensors", c);
  load_module(tmp.path / "d.safetensors", b);
  EXPECT_EQ(b.head->weight.scalar_type(), torch::kFloat32);
  EXPECT_LT(test::max_abs_diff(b.head->weight, c.head->weight), 1e-6);
}

TEST(Safetensors, LoadModuleRejectsWrongShape) {
  test::TempDir tmp("st-shape");
  Net small(2), big(4);
  save_module(tmp.path / "w.safetensors", small);
  auto before = state(big);
  auto msg = test::io_error([&] { load_module(tmp.path / "w.safetensors", big); });
  EXPECT_TRUE(contains(msg, "w.safetensors")) << msg;
  EXPECT_TRUE(contains(msg, "trunk.in_proj.base.weight: shape [8, 2] in file, [8, 4] in model")) << msg;
  EXPECT_FALSE(contains(msg, "head.weight")) << msg;  // matching names are not listed
  auto after = state(big);
  for (const auto& [name, v] : before) EXPECT_TRUE(torch::equal(v, after.at(name))) << name << " changed";
}

TEST(Safetensors, LoadModuleRejectsMissingAndUnexpectedNames) {
  test::TempDir tmp("st-names");
  Net headless(4, false), full(4);
  save_module(tmp.path / "headless.safetensors", headless);
  auto msg = test::io_error([&] { load_module(tmp.path / "headless.safetensors", full); });
  EXPECT_TRUE(contains(msg, "missing")) << msg;
  EXPECT_TRUE(contains(msg, "head.weight")) << msg;
  EXPECT_TRUE(contains(msg, "head.bias")) << msg;
  EXPECT_FALSE(contains(msg, "unexpected")) << msg;

  save_module(tmp.path / "full.safetensors", full);
  msg = test::io_error([&] { load_module(tmp.path / "full.safetensors", headless); });
  EXPECT_TRUE(contains(msg, "unexpected")) << msg;
  EXPECT_TRUE(contains(msg, "head.weight")) << msg;
  EXPECT_FALSE(contains(msg, "missing")) << msg;
}

TEST(AverageWeights, MeanOfFloatsEqualityOfTheRest) {
  test::TempDir d("average");
  const std::map<std::string, std::string> meta{{"retort.student", "{\"timesteps\":[999]}"}};
  auto a = torch::tensor({1.0f, 2.0f, 3.0f}), b = torch::tensor({2.0f, 4.0f, 9.0f}), c = torch::tensor({0.0f, 0.0f, 0.0f});
  auto half = torch::tensor({1.0, 3.0}, torch::kFloat16);
  auto steps = torch::tensor({7}, torch::kInt64);
  save_safetensors(d.path / "a.safetensors", {{"w", a}, {"h", half}, {"n", steps}}, meta);
  save_safetensors(d.path / "b.safetensors", {{"w", b}, {"h", half * 3}, {"n", steps}}, meta);
  save_safetensors(d.path / "c.safetensors", {{"w", c}, {"h", half}, {"n", steps}}, meta);
  average_weights({d.path / "a.safetensors", d.path / "b.safetensors", d.path / "c.safetensors"}, d.path / "m.safetensors");
  std::map<std::string, std::string> got_meta;
  auto m = load_safetensors(d.path / "m.safetensors", &got_meta);
  EXPECT_TRUE(torch::allclose(m["w"], torch::tensor({1.0f, 2.0f, 4.0f})));
  EXPECT_EQ(m["h"].scalar_type(), torch::kFloat16);
  EXPECT_TRUE(torch::allclose(m["h"].to(torch::kFloat32), torch::tensor({5.0f / 3, 5.0f}), 1e-3, 1e-3));  // fp16
  EXPECT_TRUE(torch::equal(m["n"], steps));
  EXPECT_EQ(got_meta, meta);

  auto refused = [&](const std::map<std::string, torch::Tensor>& t, const std::map<std::string, std::string>& md,
                     const std::string& words) {
    save_safetensors(d.path / "x.safetensors", t, md);
    try {
      average_weights({d.path / "a.safetensors", d.path / "x.safetensors"}, d.path / "bad.safetensors");
      ADD_FAILURE() << "accepted: " << words;
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("x.safetensors"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(d.path / "bad.safetensors"));
  };
  refused({{"w", a.reshape({3, 1})}, {"h", half}, {"n", steps}}, meta, "tensor 'w' is Float 3x1, but Float 3");
  refused({{"w", a.to(torch::kFloat64)}, {"h", half}, {"n", steps}}, meta, "tensor 'w' is Double");
  refused({{"w", a}, {"h", half}, {"n", steps + 1}}, meta, "tensor 'n' (Long) differs");
  refused({{"w", a}, {"h", half}}, meta, "no tensor 'n'");
  refused({{"w", a}, {"h", half}, {"n", steps}, {"extra", a}}, meta, "tensor 'extra' is not in");
  refused({{"w", a}, {"h", half}, {"n", steps}}, {{"retort.student", "{\"timesteps\":[500]}"}}, "metadata differs");
}

}  // namespace
}  // namespace retort
