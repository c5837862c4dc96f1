#include "retort/field/field_spec.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "retort/core/error.h"
#include "retort/io/safetensors.h"

namespace retort {
namespace {

const char* kMetaKey = "retort.field";

nlohmann::json describe(const FieldSpec& s) {
  return {{"kind", s.kind},
          {"hash", hash_grid_option_table().to_json(s.hash)},
          {"voxel", voxel_grid_option_table().to_json(s.voxel)}};
}

}  // namespace

const OptionTable<HashGridOptions>& hash_grid_option_table() {
  static const auto table = [] {
    using H = HashGridOptions;
    OptionTable<H> t;
    t.integer("levels", &H::levels, 1, 32, "hash grid: L, the levels")
        .integer("log2_table", &H::log2_table, 8, 24, "hash grid: T, 2^T entries per level")
        .integer("features", &H::features, 1, 8, "hash grid: F, features per level")
        .integer("base_resolution", &H::base_resolution, 2, 4096, "hash grid: cells per axis at level 0")
        .integer("max_resolution", &H::max_resolution, 2, 8192,
                 "hash grid: cells per axis at the last level (at least base_resolution)")
        .integer("hidden", &H::hidden, 4, 1024, "hash grid: width of the MLP")
        .integer("hidden_layers", &H::hidden_layers, 1, 8, "hash grid: hidden layers of the MLP")
        .number("bound", &H::bound, 1e-3, 1e3, "half-width of the field's box")
        .number("blob_density", &H::blob_density, 0, 1e4, "density of the initial blob (0: none)")
        .number("blob_radius", &H::blob_radius, 1e-3, 1.0, "radius of the initial blob")
        .check([](ConfigNode& n, const H& h) {
          if (h.max_resolution < h.base_resolution)
            n.fail("max_resolution",
                   fmt::format("{} is below base_resolution {}", h.max_resolution, h.base_resolution));
        });
    return t;
  }();
  return table;
}

const OptionTable<VoxelGridOptions>& voxel_grid_option_table() {
  static const auto table = [] {
    using V = VoxelGridOptions;
    OptionTable<V> t;
    t.integer("resolution", &V::resolution, 4, 512, "voxel grid: vertices per axis")
        .number("bound", &V::bound, 1e-3, 1e3, "half-width of the field's box")
        .number("blob_density", &V::blob_density, 0, 1e4, "density of the initial blob (0: none)")
        .number("blob_radius", &V::blob_radius, 1e-3, 1.0, "radius of the initial blob");
    return t;
  }();
  return table;
}

const OptionTable<FieldSpec>& field_option_table() {
  static const auto table = [] {
    using F = FieldSpec;
    OptionTable<F> t;
    t.choice("kind", &F::kind, {"hash", "voxel"}, "hash (Instant-NGP hash grid + MLP) or voxel (a dense grid)")
        .include(hash_grid_option_table(), &F::hash,
                 {"levels", "log2_table", "features", "base_resolution", "max_resolution", "hidden", "hidden_layers"})
        .include(voxel_grid_option_table(), &F::voxel, {"resolution"})
        // One blob for both kinds: read into the hash options, copied to the voxel ones.
        .include(hash_grid_option_table(), &F::hash, {"blob_density", "blob_radius"});
    return t;
  }();
  return table;
}

FieldSpec read_field_spec(ConfigNode n) {
  FieldSpec s;
  field_option_table().read(n, s);
  s.voxel.blob_density = s.hash.blob_density;
  s.voxel.blob_radius = s.hash.blob_radius;
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
    const auto& jh = j.at("hash");
    const auto& jv = j.at("voxel");
    hash_grid_option_table().require_keys(jh);
    voxel_grid_option_table().require_keys(jv);
    hash_grid_option_table().from_json(jh, s.hash);
    voxel_grid_option_table().from_json(jv, s.voxel);
  } catch (const std::exception& e) {
    throw IoError(fmt::format("{}: bad '{}' metadata: {}", path.string(), kMetaKey, e.what()));
  }
  auto field = make_field(s);
  load_module(path, *field);
  if (out) *out = s;
  return field;
}

}  // namespace retort
