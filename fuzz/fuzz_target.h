// A fuzz target is one reader of a file a user can hand retort, fed arbitrary bytes. Bad input must
// end in one of retort's own errors (the CLI prints it as one line, exit 2 or 3); anything else — a
// foreign exception, a crash, a sanitizer report, gigabytes allocated because a header said so — is
// a finding.
//
// RETORT_FUZZ_TARGET(name) { ... } defines a target's body. In the libFuzzer build
// (-DRETORT_FUZZ=ON, clang) each target file is its own fuzzer executable; in every other build the
// targets are registered in `retort_fuzz_replay`, which runs the committed corpus (fuzz/corpus/NAME/)
// through them (ctest `fuzz.replay`).
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "retort/core/error.h"

namespace retort::fuzz {

using Body = void (*)(const uint8_t* data, size_t size);
// name -> body, filled by the targets' static registrations (replay build only).
std::map<std::string, Body>& targets();
struct Registration {
  Registration(const char* name, Body body) { targets()[name] = body; }
};
// Targets whose valid inputs are easiest made by retort itself (a checkpoint): name -> a writer of
// one valid file, run by `retort_fuzz_replay --write-seeds DIR`.
using SeedWriter = void (*)(const std::filesystem::path& file);
std::map<std::string, SeedWriter>& seed_writers();
struct SeedRegistration {
  SeedRegistration(const char* name, SeedWriter w) { seed_writers()[name] = w; }
};

// The bytes as a file named `name` in this process's scratch folder (on tmpfs where there is one),
// rewritten on every call: the readers under test take paths.
std::filesystem::path as_file(const uint8_t* data, size_t size, const std::string& name);

// Runs one read. A retort::Error is the expected answer to bad input; anything else escapes.
template <class Read>
void expect_clean(Read&& read) {
  try {
    read();
  } catch (const retort::Error&) {
  }
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace retort::fuzz

#ifdef RETORT_LIBFUZZER
#define RETORT_FUZZ_TARGET(name)                                                      \
  static void retort_fuzz_body(const uint8_t* data, size_t size);                     \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {          \
    retort_fuzz_body(data, size);                                                     \
    return 0;                                                                         \
  }                                                                                   \
  static void retort_fuzz_body(const uint8_t* data, size_t size)
#else
#define RETORT_FUZZ_TARGET(name)                                                                 \
  static void retort_fuzz_##name(const uint8_t* data, size_t size);                              \
  static const retort::fuzz::Registration retort_fuzz_registration_##name(#name, retort_fuzz_##name); \
  static void retort_fuzz_##name(const uint8_t* data, size_t size)
#endif
