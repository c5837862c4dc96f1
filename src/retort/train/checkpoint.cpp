#include "retort/train/checkpoint.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <vector>

#include <toml++/toml.h>
#include <zip.h>

#include "retort/core/error.h"
#include "retort/io/atomic_file.h"
#include "retort/io/safetensors.h"
#include "retort/run/run_folder.h"

namespace retort {
namespace {
torch::Tensor string_tensor(const std::string& s) {
  auto t = torch::empty({int64_t(s.size())}, torch::kUInt8);
  if (!s.empty()) std::memcpy(t.data_ptr(), s.data(), s.size());  // an empty tensor's data_ptr() is null
  return t;
}
std::string tensor_string(const torch::Tensor& t) {
  auto c = t.contiguous().cpu();
  return std::string(reinterpret_cast<const char*>(c.data_ptr()), c.numel());
}
}  // namespace

void save_checkpoint(const std::filesystem::path& path, const CheckpointParts& parts, int64_t step,
                     const Rng& rng, const std::string& config_text) {
  // A diverged model is never checkpointed: the last good checkpoint stays the one a rerun resumes.
  for (const auto& [name, m] : parts.modules) {
    std::map<std::string, torch::Tensor> tensors;
    for (const auto& p : m->named_parameters()) tensors[p.key()] = p.value();
    for (const auto& b : m->named_buffers()) tensors[b.key()] = b.value();
    if (auto bad = first_non_finite(tensors); !bad.empty())
      throw NonFiniteError(fmt::format("step {}: {}.{} holds a NaN or infinite value; {} not written, the previous "
                                       "checkpoint is kept", step, name, bad, path.string()));
  }
  torch::serialize::OutputArchive ar;
  ar.write("step", torch::tensor(step));
  ar.write("rng", rng.state());
  ar.write("config", string_tensor(config_text));
  for (const auto& [name, m] : parts.modules) {
    torch::serialize::OutputArchive sub;
    m->save(sub);
    ar.write("module." + name, sub);
  }
  for (const auto& [name, o] : parts.optimizers) {
    torch::serialize::OutputArchive sub;
    o->save(sub);
    ar.write("optim." + name, sub);
  }
  for (const auto& [name, v] : parts.scalars) ar.write("scalar." + name, torch::tensor(*v, torch::kFloat64));
  // Serialised in memory first: LibTorch's file writer aborts the process when a write fails (its
  // destructor throws again while the first error unwinds), so the bytes go out through a stream
  // whose failure is an ordinary error.
  std::ostringstream bytes;
  ar.save_to(bytes);
  write_file_atomically(path, [&](const std::filesystem::path& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    const auto& b = bytes.str();
    out.write(b.data(), std::streamsize(b.size()));
    out.close();
    if (!out) throw IoError(std::strerror(errno));
  });
  checkpoint_written();
}

namespace {

std::string stored_config(torch::serialize::InputArchive& ar) {
  torch::Tensor config;
  ar.read("config", config);
  return tensor_string(config);
}

IoError different_config(const std::filesystem::path& path) {
  return IoError(
      fmt::format("{}: written by a different config; remove it or use another output folder", path.string()));
}

// A checkpoint is a zip of records LibTorch stores uncompressed. LibTorch trusts them: it allocates
// each record at the size the zip's directory gives (fuzz/checkpoint.cpp found a damaged directory
// asking for 2 GiB) and parses the TorchScript type records with a parser that can crash on damaged
// text (a SEGV, also found by fuzzing). So libzip checks the file first: a consistent directory, no
// record larger than the whole file, and every record's CRC-32. A damaged or cut file is refused;
// a file forged with valid checksums is beyond what this guards (checkpoints are retort's own files).
void check_archive(const std::filesystem::path& path) {
  int err = 0;
  std::unique_ptr<zip_t, int (*)(zip_t*)> z(zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &err), zip_close);
  if (!z) {
    zip_error_t e;
    zip_error_init_with_code(&e, err);
    const std::string why = zip_error_strerror(&e);
    zip_error_fini(&e);
    throw IoError(fmt::format("{}: unreadable checkpoint (not a whole zip archive: {})", path.string(), why));
  }
  std::error_code ec;
  const auto file_size = std::filesystem::file_size(path, ec);
  const zip_int64_t n = zip_get_num_entries(z.get(), 0);
  for (zip_int64_t i = 0; i < n; ++i) {
    zip_stat_t st;
    if (zip_stat_index(z.get(), zip_uint64_t(i), 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE) || st.size > file_size)
      throw IoError(fmt::format("{}: unreadable checkpoint (record {} claims more bytes than the file holds)",
                                path.string(), i));
    // Read to the end: libzip compares the CRC-32 there.
    std::unique_ptr<zip_file_t, int (*)(zip_file_t*)> f(zip_fopen_index(z.get(), zip_uint64_t(i), 0), zip_fclose);
    std::vector<char> buffer(1 << 16);
    zip_int64_t got = f ? 1 : -1;
    while (got > 0) got = zip_fread(f.get(), buffer.data(), buffer.size());
    if (got < 0)
      throw IoError(fmt::format("{}: unreadable checkpoint (record {} is damaged: {})", path.string(),
                                st.valid & ZIP_STAT_NAME ? st.name : std::to_string(i),
                                f ? zip_file_strerror(f.get()) : zip_strerror(z.get())));
  }
}

// Runs `read` on the checkpoint at `path`. LibTorch's archive reader answers a damaged file with
// c10::Error, torch::jit::ErrorReport, std::out_of_range and others (found by fuzz/checkpoint.cpp):
// all of them become one IoError naming the file.
template <class Read>
auto reading_checkpoint(const std::filesystem::path& path, Read&& read) {
  check_archive(path);
  try {
    return read();
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw IoError(fmt::format("{}: unreadable checkpoint ({})", path.string(), e.msg().substr(0, 200)));
  } catch (const std::exception& e) {
    const std::string what = e.what();
    throw IoError(fmt::format("{}: unreadable checkpoint ({})", path.string(), what.substr(0, what.find('\n', 1))));
  }
}

std::map<std::string, std::vector<int64_t>> tensor_shapes(torch::nn::Module& m) {
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& p : m.named_parameters(true)) shapes[p.key()] = p.value().sizes().vec();
  for (const auto& b : m.named_buffers(true)) shapes[b.key()] = b.value().sizes().vec();
  return shapes;
}

// Module::load replaces each tensor by the stored one whatever its shape: compare after.
void load_module_of_shape(const std::filesystem::path& path, const std::string& name, torch::nn::Module& m,
                          torch::serialize::InputArchive& sub) {
  const auto want = tensor_shapes(m);
  m.load(sub);
  for (const auto& [key, shape] : tensor_shapes(m))
    if (want.count(key) && want.at(key) != shape)
      throw IoError(fmt::format("{}: {}.{} is {} here but {} in the checkpoint: another architecture",
                                path.string(), name, key, want.at(key), shape));
}

// A one-element integer tensor as the step.
int64_t read_step(const std::filesystem::path& path, torch::serialize::InputArchive& ar) {
  torch::Tensor step;
  ar.read("step", step);
  if (step.numel() != 1 || step.is_floating_point() || step.item<int64_t>() < 0)
    throw IoError(fmt::format("{}: unreadable checkpoint (its step is not a count)", path.string()));
  return step.item<int64_t>();
}

// The config without `[table] steps` and [runtime]. Comment lines (the teacher's fingerprint)
// are kept: they are part of what the run computes.
std::string identity_but_length(const std::string& toml_text, const std::string& table) {
  toml::table t;
  try {
    t = toml::parse(toml_text);
  } catch (const toml::parse_error&) {
    return toml_text;  // not TOML: compare as it is
  }
  if (auto* tab = t[table].as_table()) tab->erase("steps");
  t.erase("runtime");
  // Switches that do nothing at their off value, with the keys that matter only when they are on:
  // off (or absent), none of them makes a checkpoint's config differ, so a run begun before such a
  // key existed, or before a pipeline stopped reading it, resumes.
  struct Switch {
    std::string table, key;
    double off;
    std::vector<std::string> with;
  };
  static const std::vector<Switch> switches = {
      {"train", "regressor", 0, {}},
      {"distill", "r1_weight", 0, {"r1_sigma"}},
      {"distill", "regression_weight", 0, {"regression_pairs", "regression_batch", "regression_teacher_steps"}}};
  for (const auto& s : switches)
    if (auto* tab = t[s.table].as_table()) {
      auto v = (*tab)[s.key];
      const auto x = v.is_boolean() ? std::optional<double>(v.value_or(false) ? 1.0 : 0.0) : v.value<double>();
      if (v && (!x || *x != s.off)) continue;
      tab->erase(s.key);
      for (const auto& k : s.with) tab->erase(k);
    }
  std::ostringstream os;
  os << t << "\n";
  std::istringstream lines(toml_text);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind('#', 0) == 0) os << line << "\n";
  return os.str();
}

}  // namespace

SameRun same_run_but_length(const std::string& config_text, const std::string& table) {
  return [want = identity_but_length(config_text, table), table](const std::string& stored) {
    return identity_but_length(stored, table) == want;
  };
}

int64_t require_same_config(const std::filesystem::path& path, const std::string& config_text,
                            const SameRun& same_run) {
  if (!std::filesystem::exists(path)) return 0;
  return reading_checkpoint(path, [&] {
    torch::serialize::InputArchive ar;
    ar.load_from(path.string());
    const auto stored = stored_config(ar);
    if (same_run ? !same_run(stored) : stored != config_text) throw different_config(path);
    return read_step(path, ar);
  });
}

int64_t load_checkpoint(const std::filesystem::path& path, const CheckpointParts& parts, Rng& rng,
                        const std::string& config_text, const SameRun& same_run) {
  return reading_checkpoint(path, [&] {
    torch::serialize::InputArchive ar;
    ar.load_from(path.string());
    const auto stored = stored_config(ar);
    if (same_run ? !same_run(stored) : stored != config_text) throw different_config(path);
    const int64_t step = read_step(path, ar);
    torch::Tensor state;
    ar.read("rng", state);
    for (const auto& [name, m] : parts.modules) {
      torch::serialize::InputArchive sub;
      ar.read("module." + name, sub);
      load_module_of_shape(path, name, *m, sub);
    }
    for (const auto& [name, o] : parts.optimizers) {
      torch::serialize::InputArchive sub;
      ar.read("optim." + name, sub);
      o->load(sub);
    }
    for (const auto& [name, v] : parts.scalars) {
      torch::Tensor t;
      if (ar.try_read("scalar." + name, t)) {
        if (t.numel() != 1) throw IoError(fmt::format("{}: unreadable checkpoint (scalar.{} is not one number)", path.string(), name));
        *v = t.item<double>();
      }
    }
    rng.set_state(state);
    return step;
  });
}

int64_t load_checkpoint_weights(const std::filesystem::path& path,
                                const std::map<std::string, torch::nn::Module*>& modules,
                                std::vector<std::string>* loaded) {
  return reading_checkpoint(path, [&] {
    torch::serialize::InputArchive ar;
    ar.load_from(path.string());
    for (const auto& [name, m] : modules) {
      torch::serialize::InputArchive sub;
      if (!ar.try_read("module." + name, sub)) continue;
      load_module_of_shape(path, name, *m, sub);
      if (loaded) loaded->push_back(name);
    }
    return read_step(path, ar);
  });
}

}  // namespace retort
