// Typed errors. Library code throws these with a message naming the file, key or value;
// the CLI catches them at its boundary and exits non-zero.
#pragma once
#include <stdexcept>
#include <string>

namespace retort {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A config file or value is malformed or contradictory.
struct ConfigError : Error {
  using Error::Error;
};
// A file cannot be read, written or parsed.
struct IoError : Error {
  using Error::Error;
};
// Training produced a non-finite loss or gradient.
struct NonFiniteError : Error {
  using Error::Error;
};

}  // namespace retort
