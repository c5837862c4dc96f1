// Model metadata through the option tables (UNet, few-step student, classifier): every shipped
// weight file loads, and saving what was loaded writes the same metadata JSON, key for key (a key
// added after a file was shipped, the UNet's camera_dim, with its default).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <map>
#include <string>

#include "retort/core/error.h"
#include "retort/generators/few_step_student.h"
#include "retort/io/safetensors.h"
#include "retort/models/classifier.h"
#include "retort/models/unet.h"
#include "test_util.h"

namespace retort {
namespace {

std::filesystem::path shipped(const std::string& name) {
  return std::filesystem::path(RETORT_SOURCE_DIR) / "weights" / name;
}

std::map<std::string, std::string> metadata(const std::filesystem::path& path) {
  std::map<std::string, std::string> meta;
  load_safetensors(path, &meta);
  return meta;
}

// The JSON under `key` of a shipped file `a` equals the one of its copy `b`, but for keys the
// shipped file predates (`added`), which the copy writes with their defaults.
// The UNet keys added after the shipped files were made, with the defaults a copy writes.
const nlohmann::json kUNetKeysSince = {
    {"camera_dim", 0}, {"concat_channels", 0}, {"frames", 0}, {"temporal_heads", 0}, {"temporal_from", 1}};

void expect_same_key(const std::filesystem::path& a, const std::filesystem::path& b, const std::string& key,
                     const nlohmann::json& added = nlohmann::json::object()) {
  auto ma = metadata(a), mb = metadata(b);
  ASSERT_TRUE(ma.count(key)) << a << " has no " << key;
  ASSERT_TRUE(mb.count(key)) << b << " has no " << key;
  auto ja = nlohmann::json::parse(ma.at(key)), jb = nlohmann::json::parse(mb.at(key));
  for (const auto& [k, v] : added.items())
    if (!ja.contains(k)) {
      EXPECT_EQ(jb.at(k), v) << k;
      jb.erase(k);
    }
  EXPECT_EQ(ja, jb) << key;
}

TEST(Metadata, ShippedTeachersWriteTheirMetadataBack) {
  test::TempDir tmp("metadata-unet");
  for (const std::string name : {"fmnist-teacher.safetensors", "world-teacher.safetensors", "nvs-teacher.safetensors"}) {
    auto model = load_unet(shipped(name));
    save_unet(tmp.path / name, model);
    expect_same_key(shipped(name), tmp.path / name, "retort.unet", kUNetKeysSince);
  }
}

TEST(Metadata, ShippedStudentsWriteTheirMetadataBack) {
  test::TempDir tmp("metadata-student");
  for (const std::string name : {"fmnist-dmd2-4step.safetensors", "nvs-fvgen-4step.safetensors"}) {
    auto student = load_student(shipped(name));
    ASSERT_TRUE(student) << name;
    EXPECT_EQ(student->timesteps(), (std::vector<int64_t>{999, 749, 499, 249})) << name;
    save_student(tmp.path / name, student);
    expect_same_key(shipped(name), tmp.path / name, "retort.unet", kUNetKeysSince);
    expect_same_key(shipped(name), tmp.path / name, "retort.student");
  }
}

TEST(Metadata, ShippedEvaluatorsWriteTheirMetadataBack) {
  test::TempDir tmp("metadata-classifier");
  for (const std::string name : {"fmnist-evaluator.safetensors", "world-evaluator.safetensors"}) {
    auto model = load_classifier(shipped(name));
    save_classifier(tmp.path / name, model);
    expect_same_key(shipped(name), tmp.path / name, "retort.classifier");
  }
}

TEST(Metadata, AMissingKeyIsNamed) {
  test::TempDir tmp("metadata-missing");
  auto tensors = load_safetensors(shipped("fmnist-evaluator.safetensors"));
  save_safetensors(tmp.path / "c.safetensors", tensors,
                   {{"retort.classifier", R"({"channels": 1, "resolution": 16, "width": 32, "num_classes": 10})"}});
  auto msg = test::io_error([&] { load_classifier(tmp.path / "c.safetensors"); });
  EXPECT_NE(msg.find("no 'feature_dim'"), std::string::npos) << msg;
}

// A file's description is untrusted: out-of-range values are refused like a config's, and a network
// far larger than the file is refused before it is built (fuzz/model_metadata.cpp found both:
// groups = 0 divided by zero, and widths in the tens of thousands would allocate gigabytes).
TEST(Metadata, OutOfRangeAndOversizedDescriptionsAreRefusedBeforeBuilding) {
  test::TempDir tmp("metadata-untrusted");
  std::map<std::string, std::string> meta;
  auto tensors = load_safetensors(shipped("fmnist-teacher.safetensors"), &meta);
  auto with = [&](const std::string& key, const nlohmann::json& value) {
    auto j = nlohmann::json::parse(meta.at("retort.unet"));
    j[key] = value;
    save_safetensors(tmp.path / "u.safetensors", tensors, {{"retort.unet", j.dump()}});
    return test::io_error([&] { load_unet(tmp.path / "u.safetensors"); });
  };
  auto msg = with("groups", 0);
  EXPECT_NE(msg.find("groups = 0 must be in [1, 256]"), std::string::npos) << msg;
  msg = with("widths", std::vector<int64_t>{65536, 65536});
  EXPECT_NE(msg.find("describes a network of at least"), std::string::npos) << msg;
  msg = with("widths", std::vector<int64_t>{0});
  EXPECT_NE(msg.find("widths holds 0, not in [1, 65536]"), std::string::npos) << msg;
  msg = with("blocks", 6.7e76);  // nlohmann's get<int64_t> of it would be undefined behaviour
  EXPECT_NE(msg.find("metadata blocks: 6.7e+76 is not an integer in range"), std::string::npos) << msg;
  msg = with("widths", nlohmann::json::array({32, 1e30}));
  EXPECT_NE(msg.find("metadata widths: 1e+30 is not an integer in range"), std::string::npos) << msg;
}

}  // namespace
}  // namespace retort
