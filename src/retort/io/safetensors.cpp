#include "retort/io/safetensors.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "retort/core/error.h"
#include "retort/io/atomic_file.h"

namespace retort {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian; so must the host be");

struct Dtype {
  const char* name;
  torch::ScalarType type;
  uint64_t size;
};

const Dtype kDtypes[] = {
    {"F64", torch::kFloat64, 8}, {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8}, {"I32", torch::kInt32, 4},
    {"I16", torch::kInt16, 2},   {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
    {"BOOL", torch::kBool, 1},
};

// Guards against absurd header lengths before allocating; the reference reader uses the same cap.
constexpr uint64_t kMaxHeader = 100 * 1000 * 1000;

const Dtype* dtype_by_name(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const Dtype* dtype_by_type(torch::ScalarType t) {
  for (const auto& d : kDtypes)
    if (t == d.type) return &d;
  return nullptr;
}

std::string shape_str(c10::IntArrayRef s) { return fmt::format("{}", s.vec()); }

// One validated header entry.
struct Entry {
  std::string name;
  const Dtype* dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

Entry parse_entry(const fs::path& path, const std::string& name, const json& v, uint64_t buffer_size) {
  auto fail = [&](const std::string& what) { return IoError(fmt::format("{}: {}: {}", path.string(), name, what)); };
  if (!v.is_object()) throw fail("header entry is not an object");
  auto dt = v.find("dtype"), sh = v.find("shape"), off = v.find("data_offsets");
  if (dt == v.end() || sh == v.end() || off == v.end()) throw fail("header entry needs dtype, shape and data_offsets");
  if (!dt->is_string()) throw fail("dtype is not a string");
  Entry e{name, dtype_by_name(dt->get<std::string>()), {}, 0, 0};
  if (!e.dtype) throw fail(fmt::format("unsupported dtype '{}'", dt->get<std::string>()));
  if (!sh->is_array()) throw fail("shape is not an array");
  uint64_t bytes = e.dtype->size;
  bool overflow = false;
  for (const auto& d : *sh) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > uint64_t(INT64_MAX))
      throw fail(fmt::format("shape {} holds a non-integer or negative size", sh->dump()));
    overflow = overflow || __builtin_mul_overflow(bytes, d.get<uint64_t>(), &bytes);
    e.shape.push_back(d.get<int64_t>());
  }
  if (!off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() || !(*off)[1].is_number_unsigned())
    throw fail(fmt::format("data_offsets {} is not a pair of non-negative integers", off->dump()));
  e.begin = (*off)[0].get<uint64_t>();
  e.end = (*off)[1].get<uint64_t>();
  if (e.begin > e.end) throw fail(fmt::format("data_offsets [{}, {}] run backwards", e.begin, e.end));
  if (overflow || bytes != e.end - e.begin)
    throw fail(fmt::format("shape {} of {} needs {} bytes, data_offsets [{}, {}] give {}", shape_str(e.shape),
                           e.dtype->name, overflow ? std::string("too many") : std::to_string(bytes), e.begin, e.end,
                           e.end - e.begin));
  if (e.end > buffer_size)
    throw fail(fmt::format("truncated: data_offsets [{}, {}] reach past the {} bytes of data the file holds", e.begin,
                           e.end, buffer_size));
  return e;
}

void read_metadata(const fs::path& path, const json& v, std::map<std::string, std::string>* out) {
  if (!v.is_object()) throw IoError(fmt::format("{}: __metadata__ is not an object", path.string()));
  for (const auto& [k, s] : v.items()) {
    if (!s.is_string()) throw IoError(fmt::format("{}: __metadata__.{} is not a string", path.string(), k));
    if (out) (*out)[k] = s.get<std::string>();
  }
}

std::map<std::string, torch::Tensor> module_tensors(torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : m.named_parameters(true))
    if (p.value().defined()) out[p.key()] = p.value();
  for (const auto& b : m.named_buffers(true))
    if (b.value().defined()) out[b.key()] = b.value();
  return out;
}

// "a, b, c" with at most `limit` names, so a wrong model does not print thousands of lines.
std::string name_list(const std::vector<std::string>& names, size_t limit = 12) {
  std::vector<std::string> shown(names.begin(), names.begin() + std::min(names.size(), limit));
  auto s = fmt::format("{}", fmt::join(shown, ", "));
  if (names.size() > limit) s += fmt::format(", ... ({} more)", names.size() - limit);
  return s;
}

}  // namespace

void save_safetensors(const fs::path& path, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__") throw IoError(fmt::format("{}: '__metadata__' is reserved, not a tensor name", path.string()));
    if (!t.defined()) throw IoError(fmt::format("{}: {}: tensor is undefined", path.string(), name));
    const Dtype* d = dtype_by_type(t.scalar_type());
    if (!d) throw IoError(fmt::format("{}: {}: dtype {} has no safetensors equivalent here", path.string(), name,
                                      c10::toString(t.scalar_type())));
    uint64_t bytes = uint64_t(t.numel()) * d->size;
    header[name] = {{"dtype", d->name}, {"shape", t.sizes().vec()}, {"data_offsets", json::array({offset, offset + bytes})}};
    offset += bytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    throw IoError(fmt::format("{}: cannot encode header: {}", path.string(), e.what()));
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned, as the reference writer does

  write_file_atomically(path, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw IoError(fmt::format("cannot open {}: {}", tmp.string(), std::strerror(errno)));
    uint64_t n = text.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out.write(text.data(), std::streamsize(text.size()));
    // Converted one at a time so a large model on the GPU needs only one tensor's CPU copy at once.
    for (const auto& [name, t] : tensors) {
      auto c = t.detach().to(torch::kCPU).contiguous();
      out.write(static_cast<const char*>(c.data_ptr()), std::streamsize(c.nbytes()));
    }
    out.close();
    if (!out) throw IoError(std::strerror(errno));
  });
}

std::map<std::string, torch::Tensor> load_safetensors(const fs::path& path, std::map<std::string, std::string>* metadata) {
  std::error_code ec;
  uint64_t file_size = fs::file_size(path, ec);
  if (ec) throw IoError(fmt::format("{}: cannot read: {}", path.string(), ec.message()));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("{}: cannot open", path.string()));
  if (file_size < 8)
    throw IoError(fmt::format("{}: truncated: {} bytes, shorter than the 8-byte header length", path.string(), file_size));
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  if (n > file_size - 8 || n > kMaxHeader)
    throw IoError(fmt::format("{}: header length {} is larger than the file ({} bytes) allows; not a safetensors file?",
                              path.string(), n, file_size));
  std::string text(n, '\0');
  in.read(text.data(), std::streamsize(n));
  if (!in) throw IoError(fmt::format("{}: cannot read the {}-byte header", path.string(), n));
  json header;
  try {
    header = json::parse(text);
  } catch (const json::exception& e) {
    throw IoError(fmt::format("{}: header is not valid JSON: {}", path.string(), e.what()));
  }
  if (!header.is_object()) throw IoError(fmt::format("{}: header is not a JSON object", path.string()));

  uint64_t buffer_size = file_size - 8 - n;
  std::vector<Entry> entries;
  for (const auto& [name, v] : header.items()) {
    if (name == "__metadata__") read_metadata(path, v, metadata);
    else entries.push_back(parse_entry(path, name, v, buffer_size));
  }
  auto by_offset = entries;
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i].begin < by_offset[i - 1].end)
      throw IoError(fmt::format("{}: {}: data_offsets [{}, {}] overlap {} [{}, {}]", path.string(), by_offset[i].name,
                                by_offset[i].begin, by_offset[i].end, by_offset[i - 1].name, by_offset[i - 1].begin,
                                by_offset[i - 1].end));

  std::map<std::string, torch::Tensor> out;
  for (const auto& e : by_offset) {  // file order: sequential reads
    auto t = torch::empty(e.shape, e.dtype->type);
    in.seekg(std::streamoff(8 + n + e.begin));
    in.read(static_cast<char*>(t.data_ptr()), std::streamsize(e.end - e.begin));
    if (!in) throw IoError(fmt::format("{}: {}: cannot read {} bytes of data", path.string(), e.name, e.end - e.begin));
    out[e.name] = t;
  }
  return out;
}

std::string first_non_finite(const std::map<std::string, torch::Tensor>& tensors) {
  for (const auto& [name, t] : tensors)
    if (t.defined() && t.is_floating_point() && !torch::isfinite(t).all().item<bool>()) return name;
  return "";
}

void save_module(const fs::path& path, torch::nn::Module& m, const std::map<std::string, std::string>& metadata) {
  auto tensors = module_tensors(m);
  if (auto bad = first_non_finite(tensors); !bad.empty())
    throw NonFiniteError(fmt::format("{}: not written: tensor {} holds a NaN or infinite value", path.string(), bad));
  save_safetensors(path, tensors, metadata);
}

void load_module(const fs::path& path, torch::nn::Module& m) {
  auto file = load_safetensors(path);
  auto model = module_tensors(m);
  std::vector<std::string> missing, unexpected, shapes;
  for (const auto& [name, t] : model) {
    auto it = file.find(name);
    if (it == file.end()) missing.push_back(name);
    else if (it->second.sizes() != t.sizes())
      shapes.push_back(fmt::format("{}: shape {} in file, {} in model", name, shape_str(it->second.sizes()),
                                   shape_str(t.sizes())));
  }
  for (const auto& [name, t] : file)
    if (!model.count(name)) unexpected.push_back(name);
  if (!missing.empty() || !unexpected.empty() || !shapes.empty()) {
    std::vector<std::string> parts;
    if (!shapes.empty()) parts.push_back(name_list(shapes));
    if (!missing.empty()) parts.push_back("missing from file: " + name_list(missing));
    if (!unexpected.empty()) parts.push_back("unexpected in file: " + name_list(unexpected));
    throw IoError(fmt::format("{}: does not match the model: {}", path.string(), fmt::join(parts, "; ")));
  }
  if (auto bad = first_non_finite(file); !bad.empty())
    throw IoError(fmt::format("{}: tensor {} holds a NaN or infinite value; refusing weights that cannot be right",
                              path.string(), bad));
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : model) t.copy_(file.at(name));
}

}  // namespace retort
