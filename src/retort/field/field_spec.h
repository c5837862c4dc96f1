// The [field] table of text-to-3D runs: which radiance field, with which options, and its
// safetensors file (the options ride in the metadata, so a file alone rebuilds the field).
#pragma once
#include <filesystem>
#include <memory>
#include <string>

#include "retort/core/config.h"
#include "retort/core/options.h"
#include "retort/field/hash_grid.h"
#include "retort/field/voxel_grid.h"

namespace retort {

struct FieldSpec {
  std::string kind = "hash";  // hash | voxel
  HashGridOptions hash;
  VoxelGridOptions voxel;
};

// The options of each field kind (also the metadata of field files), and the [field] keys.
const OptionTable<HashGridOptions>& hash_grid_option_table();
const OptionTable<VoxelGridOptions>& voxel_grid_option_table();
const OptionTable<FieldSpec>& field_option_table();
// Unknown keys and out-of-range values are ConfigErrors naming the key.
FieldSpec read_field_spec(ConfigNode n);
std::shared_ptr<RadianceField> make_field(const FieldSpec& spec);
void save_field(const std::filesystem::path& path, RadianceField& field, const FieldSpec& spec);
// Throws IoError naming the file when it is not a retort field or does not match its metadata.
std::shared_ptr<RadianceField> load_field(const std::filesystem::path& path, FieldSpec* spec = nullptr);

}  // namespace retort
