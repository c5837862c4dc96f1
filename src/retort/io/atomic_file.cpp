#include "retort/io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <c10/util/Exception.h>
#include <fmt/format.h>

#include "retort/core/error.h"

namespace retort {
namespace {

// fsync of a file or folder; false with errno set when it fails.
bool sync_path(const std::filesystem::path& p, int flags) {
  const int fd = ::open(p.c_str(), flags);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  errno = err;
  return ok;
}

}  // namespace

void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(const std::filesystem::path& tmp)>& write) {
  auto tmp = path;
  tmp += ".tmp";
  auto fail = [&](const std::string& why) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    return IoError(fmt::format("{}: cannot write: {}", path.string(), why));
  };
  try {
    write(tmp);
  } catch (const IoError& e) {
    throw fail(e.what());
  } catch (const c10::Error& e) {
    throw fail(e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw fail(e.what());
  }
  if (!sync_path(tmp, O_RDONLY)) throw fail(std::strerror(errno));
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw fail("cannot rename " + tmp.string() + " into place: " + ec.message());
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  sync_path(dir, O_RDONLY | O_DIRECTORY);  // best effort: some file systems refuse a folder fsync
}

}  // namespace retort
