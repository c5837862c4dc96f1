#include "retort/run/run_folder.h"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <vector>
#include <cstring>
#include <fstream>

#include "retort/core/error.h"
#include "retort/dist/world.h"
#include "retort/io/atomic_file.h"
#include "retort/io/fingerprint.h"

namespace retort {

void create_output_folder(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw IoError(fmt::format("{}: cannot create output folder: {}", dir.string(), ec.message()));
  auto probe = dir / ".write-probe";
  {
    std::ofstream f(probe);
    if (!(f << "ok")) throw IoError(fmt::format("{}: output folder is not writable", dir.string()));
  }
  std::filesystem::remove(probe, ec);
}

namespace {

std::vector<int>& held_lock_files() {
  static std::vector<int> fds;
  return fds;
}

// At a normal exit (an error exit too) the lock files are emptied, so that only a process that was
// killed leaves its pid behind, and the next run says it took the folder over.
void clear_lock_files() {
  for (int fd : held_lock_files()) (void)::ftruncate(fd, 0);
}

}  // namespace

void lock_output_folder(const std::filesystem::path& dir) {
  static std::set<std::string> held;
  std::error_code ec;
  const auto key = std::filesystem::weakly_canonical(dir, ec).string();
  if (held.count(key)) return;
  const auto path = dir / ".lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(fmt::format("{}: cannot open the lock file: {}", path.string(), std::strerror(errno)));
  std::string before(64, '\0');
  const ssize_t n = ::pread(fd, before.data(), before.size(), 0);
  before.resize(n > 0 ? size_t(n) : 0);
  while (!before.empty() && (before.back() == '\n' || before.back() == ' ')) before.pop_back();
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK)
      throw IoError(fmt::format("{}: in use by another retort run ({}); wait for it to finish or stop it, or use "
                                "another --out", dir.string(), before.empty() ? "pid unknown" : before));
    throw IoError(fmt::format("{}: cannot lock: {}", path.string(), std::strerror(err)));
  }
  const std::string mine = fmt::format("pid {}", ::getpid());
  if (!before.empty() && before != mine)
    std::fprintf(stderr, "%s: taking over from %s, which did not exit cleanly (killed or crashed)\n", dir.string().c_str(), before.c_str());
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, (mine + "\n").data(), mine.size() + 1, 0) < 0)
    std::fprintf(stderr, "%s: cannot record this process in the lock file: %s\n", path.string().c_str(), std::strerror(errno));
  held.insert(key);  // the descriptor stays open, and the lock held, until the process ends
  if (held_lock_files().empty()) std::atexit(clear_lock_files);
  held_lock_files().push_back(fd);
}

bool output_folder_in_use(const std::filesystem::path& dir) {
  const int fd = ::open((dir / ".lock").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0;
  ::close(fd);
  return held;
}

torch::Device start_run(const std::filesystem::path& out, const RuntimeOptions& runtime, bool data_parallel) {
  if (const int ranks = launched_world_size(); !data_parallel && ranks > 1)
    throw ConfigError(fmt::format("WORLD_SIZE = {}: this command runs on one process; launch it without torchrun "
                                  "(train-teacher, train-nvs-teacher, train-evaluator, distill, distill-nvs and bench-gmm run "
                                  "data-parallel)",
                                  ranks));
  create_output_folder(out);
  apply_runtime(runtime);
  if (!data_parallel) {
    lock_output_folder(out);
    return parse_device(runtime.device);
  }
  auto device = rank_device(runtime);
  join_world(runtime, device);
  if (world().writes()) lock_output_folder(out);  // the other ranks work in rank 0's folder
  return device;
}

void write_text_atomic(const std::filesystem::path& path, const std::string& text) {
  write_file_atomically(path, [&](const std::filesystem::path& tmp) {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    out.close();
    if (!out) throw IoError(std::strerror(errno));
  });
}

void write_resolved_config(const std::filesystem::path& out, const std::string& config_text) {
  const World& w = world();
  if (!w.writes()) return;
  std::string text = config_text;
  if (w.distributed()) {
    if (!text.empty() && text.back() != '\n') text += '\n';
    text += fmt::format("# run at world size {} ({}, launched by torchrun): the batch keys are global batches, each "
                        "rank trains on batch / {}\n", w.size, w.backend, w.size);
  }
  write_text_atomic(out / "config.resolved.toml", text);
}

namespace {
std::function<void()>& checkpoint_observer() {
  static std::function<void()> f;
  return f;
}
}  // namespace

void set_checkpoint_observer(std::function<void()> observer) { checkpoint_observer() = std::move(observer); }

void checkpoint_written() {
  if (checkpoint_observer()) checkpoint_observer()();
}

std::string run_identity(const std::string& resolved_toml, const std::filesystem::path& teacher) {
  return resolved_toml + "# teacher " + file_fingerprint(teacher) + "\n";
}

}  // namespace retort
