#include "retort/io/average_weights.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>
#include <string>

#include "retort/core/error.h"
#include "retort/io/safetensors.h"

namespace retort {

void average_weights(const std::vector<std::filesystem::path>& inputs, const std::filesystem::path& out) {
  if (inputs.empty()) throw IoError("average_weights: no input files");
  std::map<std::string, std::string> meta0;
  const auto first = load_safetensors(inputs[0], &meta0);
  std::map<std::string, torch::Tensor> sum;
  for (const auto& [name, t] : first) sum[name] = t.is_floating_point() ? t.to(torch::kFloat64) : t;
  for (size_t i = 1; i < inputs.size(); ++i) {
    const auto& path = inputs[i];
    std::map<std::string, std::string> meta;
    const auto tensors = load_safetensors(path, &meta);
    if (meta != meta0)
      throw IoError(fmt::format("{}: its metadata differs from {}'s (another architecture or student)",
                                path.string(), inputs[0].string()));
    for (const auto& [name, t] : first)
      if (!tensors.count(name)) throw IoError(fmt::format("{}: no tensor '{}' (it is in {})", path.string(), name, inputs[0].string()));
    for (const auto& [name, t] : tensors) {
      auto it = first.find(name);
      if (it == first.end())
        throw IoError(fmt::format("{}: tensor '{}' is not in {}", path.string(), name, inputs[0].string()));
      const auto& ref = it->second;
      if (t.sizes() != ref.sizes() || t.scalar_type() != ref.scalar_type())
        throw IoError(fmt::format("{}: tensor '{}' is {} {}, but {} {} in {}", path.string(), name,
                                  c10::toString(t.scalar_type()), fmt::join(t.sizes(), "x"),
                                  c10::toString(ref.scalar_type()), fmt::join(ref.sizes(), "x"), inputs[0].string()));
      if (t.is_floating_point())
        sum[name] += t.to(torch::kFloat64);
      else if (!torch::equal(t, ref))
        throw IoError(fmt::format("{}: tensor '{}' ({}) differs from {}'s and cannot be averaged", path.string(),
                                  name, c10::toString(t.scalar_type()), inputs[0].string()));
    }
  }
  std::map<std::string, torch::Tensor> mean;
  const double n = double(inputs.size());
  for (const auto& [name, t] : sum)
    mean[name] = t.is_floating_point() ? (t / n).to(first.at(name).scalar_type()) : t;
  save_safetensors(out, mean, meta0);
}

}  // namespace retort
