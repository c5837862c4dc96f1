// Strict, self-documenting config access over TOML.
//
// Every read names its key and default; a value of the wrong type or out of range, and any key
// that no code reads, is a ConfigError naming the file and the dotted key. What was read (defaults
// included) is recorded so a run directory can store the fully resolved config.
#pragma once
#include <toml++/toml.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace retort {

class ConfigNode {
 public:
  // Parses a file; throws ConfigError on syntax errors (with line and column) or a missing file.
  // `overrides` ("distill.gan_weight=3e-3", the CLI's --set) are applied to the parsed tree before
  // anything reads it, so they are checked and recorded like the file's own values.
  static ConfigNode from_file(const std::filesystem::path& path, const std::vector<std::string>& overrides = {});
  static ConfigNode from_string(const std::string& text, const std::string& source_name,
                                const std::vector<std::string>& overrides = {});
  // A fresh reader of this document's parsed tree with more overrides (nothing read yet).
  ConfigNode with_overrides(const std::vector<std::string>& overrides) const;

  double number(const std::string& key, double def);
  double number(const std::string& key, double def, double min, double max);
  int64_t integer(const std::string& key, int64_t def, int64_t min, int64_t max);
  bool boolean(const std::string& key, bool def);
  std::string string(const std::string& key, const std::string& def);
  // A string that must be one of `choices`; the error lists them.
  std::string choice(const std::string& key, const std::string& def,
                     const std::vector<std::string>& choices);
  std::vector<double> numbers(const std::string& key, const std::vector<double>& def);
  std::vector<std::string> strings(const std::string& key, const std::vector<std::string>& def);
  std::vector<std::vector<double>> matrix(const std::string& key);

  bool has(const std::string& key) const;
  // A sub-table; an absent key gives an empty table (all defaults).
  ConfigNode table(const std::string& key);
  // An array of tables ([[key]]); absent gives an empty list.
  std::vector<ConfigNode> tables(const std::string& key);

  // Throws ConfigError for keys present in the file that nothing read (typos, stale keys).
  void finish() const;
  // Keys (or whole tables) that another command sharing this file reads: finish() accepts them.
  void ignore(const std::vector<std::string>& keys);
  // "file: key" prefix for messages about this node's keys.
  std::string where(const std::string& key) const;
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;

  // The resolved config of the whole document (what was read, with defaults), as TOML text.
  std::string resolved_toml() const;
  // The resolved keys of this node only.
  std::string resolved_here() const;
  const std::string& source() const { return shared_->source; }

 private:
  struct Shared {
    std::string source;
    toml::table root;
    toml::table resolved;
  };
  ConfigNode(std::shared_ptr<Shared> shared, toml::table* node, toml::table* out, std::string path);
  toml::node* get(const std::string& key);
  // The array under `key` with each element converted by element(node, index) (which fails with its
  // own message), or `def`; recorded in the resolved tree. `what`: "numbers", "strings".
  template <class T, class Element>
  std::vector<T> array(const std::string& key, const std::vector<T>& def, const char* what, Element element);
  std::string dotted(const std::string& key) const;

  std::shared_ptr<Shared> shared_;
  toml::table* node_;
  toml::table* out_;
  std::string path_;
  std::shared_ptr<std::set<std::string>> read_;
  std::shared_ptr<std::vector<ConfigNode>> children_;
};

}  // namespace retort
