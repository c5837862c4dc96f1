#include "retort/field/field_spec.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "retort/core/error.h"
#include "retort/io/safetensors.h"

namespace retort {
namespace {

const char* kMetaKey = "retort.field";

nlohmann::json describe(const FieldSpec& s) {
  const auto& h = s.hash;
  const auto& v = s.voxel;
  return {{"kind", s.kind},
          {"hash", {{"levels", h.levels}, {"log2_table", h.log2_table}, {"features", h.features},
                    {"base_resolution", h.base_resolution}, {"max_resolution", h.max_resolution},
                    {"hidden", h.hidden}, {"hidden_layers", h.hidden_layers}, {"bound", h.bound},
                    {"blob_density", h.blob_density}, {"blob_radius", h.blob_radius}}},
          {"voxel", {{"resolution", v.resolution}, {"bound", v.bound}, {"blob_density", v.blob_density},
                     {"blob_radius", v.blob_radius}}}};
}

}  // namespace

FieldSpec read_field_spec(ConfigNode n) {
  FieldSpec s;
  s.kind = n.choice("kind", s.kind, {"hash", "voxel"});
  auto& h = s.hash;
  h.levels = n.integer("levels", h.levels, 1, 32);
  h.log2_table = n.integer("log2_table", h.log2_table, 8, 24);
  h.features = n.integer("features", h.features, 1, 8);
  h.base_resolution = n.integer("base_resolution", h.base_resolution, 2, 4096);
  h.max_resolution = n.integer("max_resolution", h.max_resolution, h.base_resolution, 8192);
  h.hidden = n.integer("hidden", h.hidden, 4, 1024);
  h.hidden_layers = n.integer("hidden_layers", h.hidden_layers, 1, 8);
  auto& v = s.voxel;
  v.resolution = n.integer("resolution", v.resolution, 4, 512);
  double blob_density = n.number("blob_density", h.blob_density, 0, 1e4);
  double blob_radius = n.number("blob_radius", h.blob_radius, 1e-3, 1.0);
  h.blob_density = v.blob_density = blob_density;
  h.blob_radius = v.blob_radius = blob_radius;
  return s;
}

std::shared_ptr<RadianceField> make_field(const FieldSpec& spec) {
  if (spec.kind == "hash") return HashGridField(spec.hash).ptr();
  if (spec.kind == "voxel") return VoxelGrid(spec.voxel).ptr();
  throw ConfigError(fmt::format("field.kind: unknown value '{}'; known: hash, voxel", spec.kind));
}

void save_field(const std::filesystem::path& path, RadianceField& field, const FieldSpec& spec) {
  save_module(path, field, {{kMetaKey, describe(spec).dump()}});
}

std::shared_ptr<RadianceField> load_field(const std::filesystem::path& path, FieldSpec* out) {
  std::map<std::string, std::string> meta;
  load_safetensors(path, &meta);
  auto it = meta.find(kMetaKey);
  if (it == meta.end())
    throw IoError(fmt::format("{}: not a retort radiance field (no '{}' metadata)", path.string(), kMetaKey));
  FieldSpec s;
  try {
    auto j = nlohmann::json::parse(it->second);
    s.kind = j.at("kind");
    auto jh = j.at("hash");
    auto& h = s.hash;
    h.levels = jh.at("levels");
    h.log2_table = jh.at("log2_table");
    h.features = jh.at("features");
    h.base_resolution = jh.at("base_resolution");
    h.max_resolution = jh.at("max_resolution");
    h.hidden = jh.at("hidden");
    h.hidden_layers = jh.at("hidden_layers");
    h.bound = jh.at("bound");
    h.blob_density = jh.at("blob_density");
    h.blob_radius = jh.at("blob_radius");
    auto jv = j.at("voxel");
    s.voxel.resolution = jv.at("resolution");
    s.voxel.bound = jv.at("bound");
    s.voxel.blob_density = jv.at("blob_density");
    s.voxel.blob_radius = jv.at("blob_radius");
  } catch (const std::exception& e) {
    throw IoError(fmt::format("{}: bad '{}' metadata: {}", path.string(), kMetaKey, e.what()));
  }
  auto field = make_field(s);
  load_module(path, *field);
  if (out) *out = s;
  return field;
}

}  // namespace retort
