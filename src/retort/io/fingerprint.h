// A short name for a file's contents, so that run folders belong to the weights they were made
// from and not only to their path: a teacher retrained in place must not resume an old run.
#pragma once
#include <filesystem>
#include <string>

namespace retort {

// "FILE: N bytes, fnv1a64 0123456789abcdef"; "FILE: missing" when it cannot be read (the command
// then fails on it with its own message).
std::string file_fingerprint(const std::filesystem::path& path);

}  // namespace retort
