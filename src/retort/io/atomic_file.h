// The one way retort replaces a file (a checkpoint, weights, a results table): readers and a
// resumed run see either the old file or the whole new one, never a half-written "latest".
#pragma once
#include <filesystem>
#include <functional>

namespace retort {

// `write` fills a temporary file beside `path` (path + ".tmp"); it is flushed to the disk (fsync),
// renamed over `path`, and the folder is synced so the rename survives a crash. When `write`
// throws or the disk is full, the temporary is removed, the old `path` stays as it was, and an
// IoError names the file and the cause.
void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(const std::filesystem::path& tmp)>& write);

}  // namespace retort
