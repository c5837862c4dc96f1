// One declaration per option (llama.cpp's common/arg.cpp): a row names the TOML key, the struct
// member it fills, its range or choices and a one-line help. The struct's member initialiser is the
// default; a preset (a named function on the struct, applied before reading) changes defaults per
// method. The same rows read a TOML table (ConfigNode: range and type errors name file and key;
// unknown keys are rejected by finish()), print the key table as markdown (`retort config CMD`),
// and write and read model metadata as JSON.
#pragma once
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join ({fmt} 11 moved it here)

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "retort/core/config.h"
#include "retort/core/error.h"

namespace retort {

// A std::array member takes exactly its size; any other list member is resized (assign).
template <class T>
struct is_std_array : std::false_type {};
template <class T, size_t N>
struct is_std_array<std::array<T, N>> : std::true_type {};
template <class T>
struct is_std_vector : std::false_type {};
template <class T, class A>
struct is_std_vector<std::vector<T, A>> : std::true_type {};

// A number as TOML would print it, short: 1e-05 -> 1e-05, 0.5 -> 0.5, 100 -> 100.
inline std::string option_number_text(double v) { return fmt::format("{}", v); }

template <class S>
class OptionTable {
 public:
  struct Row {
    std::string key, help, range;
    std::function<void(ConfigNode&, S&)> read;        // reads key, s's value as the default
    std::function<std::string(const S&)> show;        // the value as TOML text
    std::function<void(const S&, nlohmann::json&)> save;
    std::function<void(const nlohmann::json&, S&)> load;
    std::function<void(const S&, const std::string&)> validate;  // range check of a value not read from TOML
  };
  using Check = std::function<void(ConfigNode&, const S&)>;

  // `ref` is a member pointer (&S::x) or a callable S& -> T& (for nested members).
  template <class Ref>
  OptionTable& number(std::string key, Ref ref, double lo, double hi, std::string help) {
    Row r = start(key, std::move(help), fmt::format("[{}, {}]", option_number_text(lo), option_number_text(hi)));
    r.read = [key, ref, lo, hi](ConfigNode& n, S& s) {
      auto& v = std::invoke(ref, s);
      v = static_cast<std::remove_reference_t<decltype(v)>>(n.number(key, double(v), lo, hi));
    };
    r.show = [ref](const S& s) { return option_number_text(double(value(ref, s))); };
    r.validate = [key, ref, lo, hi](const S& s, const std::string& where) {
      const double v = double(value(ref, s));
      if (!(v >= lo && v <= hi))
        throw ConfigError(fmt::format("{}: {} = {} must be in [{}, {}]", where, key, v, option_number_text(lo),
                                      option_number_text(hi)));
    };
    return add(std::move(r), key, ref);
  }
  template <class Ref>
  OptionTable& integer(std::string key, Ref ref, int64_t lo, int64_t hi, std::string help) {
    Row r = start(key, std::move(help), fmt::format("[{}, {}]", lo, hi));
    r.read = [key, ref, lo, hi](ConfigNode& n, S& s) {
      auto& v = std::invoke(ref, s);
      v = static_cast<std::remove_reference_t<decltype(v)>>(n.integer(key, int64_t(v), lo, hi));
    };
    r.show = [ref](const S& s) { return fmt::format("{}", int64_t(value(ref, s))); };
    r.validate = [key, ref, lo, hi](const S& s, const std::string& where) {
      const int64_t v = int64_t(value(ref, s));
      if (v < lo || v > hi) throw ConfigError(fmt::format("{}: {} = {} must be in [{}, {}]", where, key, v, lo, hi));
    };
    return add(std::move(r), key, ref);
  }
  template <class Ref>
  OptionTable& flag(std::string key, Ref ref, std::string help) {
    Row r = start(key, std::move(help), "true, false");
    r.read = [key, ref](ConfigNode& n, S& s) {
      auto& v = std::invoke(ref, s);
      v = n.boolean(key, v);
    };
    r.show = [ref](const S& s) { return std::string(value(ref, s) ? "true" : "false"); };
    return add(std::move(r), key, ref);
  }
  template <class Ref>
  OptionTable& text(std::string key, Ref ref, std::string help) {
    Row r = start(key, std::move(help), "text");
    r.read = [key, ref](ConfigNode& n, S& s) {
      auto& v = std::invoke(ref, s);
      v = n.string(key, std::string(v));
    };
    r.show = [ref](const S& s) { return fmt::format("\"{}\"", std::string(value(ref, s))); };
    // std::string or std::filesystem::path members: JSON holds the text.
    r.save = [key, ref](const S& s, nlohmann::json& j) { j[key] = std::string(value(ref, s)); };
    r.load = [key, ref](const nlohmann::json& j, S& s) {
      if (j.contains(key)) std::invoke(ref, s) = j.at(key).get<std::string>();
    };
    rows_.push_back(std::move(r));
    return *this;
  }
  // A string member that must be one of `choices`.
  template <class Ref>
  OptionTable& choice(std::string key, Ref ref, std::vector<std::string> choices, std::string help) {
    Row r = start(key, std::move(help), fmt::format("{}", fmt::join(choices, ", ")));
    r.read = [key, ref, choices](ConfigNode& n, S& s) {
      auto& v = std::invoke(ref, s);
      v = n.choice(key, v, choices);
    };
    r.show = [ref](const S& s) { return fmt::format("\"{}\"", value(ref, s)); };
    return add(std::move(r), key, ref);
  }
  // An enum member whose value k is named names[k].
  template <class Ref>
  OptionTable& named(std::string key, Ref ref, std::vector<std::string> names, std::string help) {
    Row r = start(key, std::move(help), fmt::format("{}", fmt::join(names, ", ")));
    r.read = [key, ref, names](ConfigNode& n, S& s) {
      auto& v = std::invoke(ref, s);
      const auto text = n.choice(key, names.at(size_t(v)), names);
      for (size_t i = 0; i < names.size(); ++i)
        if (names[i] == text) v = static_cast<std::remove_reference_t<decltype(v)>>(i);
    };
    r.show = [ref, names](const S& s) { return fmt::format("\"{}\"", names.at(size_t(value(ref, s)))); };
    r.save = [key, ref, names](const S& s, nlohmann::json& j) { j[key] = names.at(size_t(value(ref, s))); };
    r.load = [key, ref, names](const nlohmann::json& j, S& s) {
      if (!j.contains(key)) return;
      const auto text = j.at(key).get<std::string>();
      for (size_t i = 0; i < names.size(); ++i)
        if (names[i] == text) {
          std::invoke(ref, s) = static_cast<std::remove_reference_t<decltype(std::invoke(ref, s))>>(i);
          return;
        }
      throw IoError(fmt::format("metadata {}: unknown value '{}'", key, text));
    };
    rows_.push_back(std::move(r));
    return *this;
  }
  // A list of numbers (each in [lo, hi]); a std::array member takes exactly its size.
  template <class Ref>
  OptionTable& numbers(std::string key, Ref ref, double lo, double hi, std::string help) {
    Row r = start(key, std::move(help), fmt::format("list in [{}, {}]", option_number_text(lo), option_number_text(hi)));
    r.read = [key, ref, lo, hi](ConfigNode& n, S& s) {
      auto& v = std::invoke(ref, s);
      std::vector<double> def(v.begin(), v.end());
      auto got = n.numbers(key, def);
      for (double x : got)
        if (x < lo || x > hi) n.fail(key, fmt::format("{} is out of range [{}, {}]", x, lo, hi));
      if constexpr (!is_std_array<std::decay_t<decltype(v)>>::value) {
        v.assign(got.begin(), got.end());
      } else {  // a std::array: exactly its size
        if (got.size() != v.size()) n.fail(key, fmt::format("expected {} numbers, got {}", v.size(), got.size()));
        std::copy(got.begin(), got.end(), v.begin());
      }
    };
    r.show = [ref](const S& s) {
      const auto& v = value(ref, s);
      return list_text(v, [](auto x) { return option_number_text(double(x)); });
    };
    return add(std::move(r), key, ref);
  }
  // A list of integers, each in [lo, hi] (a fraction is an error).
  template <class Ref>
  OptionTable& integers(std::string key, Ref ref, int64_t lo, int64_t hi, std::string help) {
    Row r = start(key, std::move(help), fmt::format("list of integers in [{}, {}]", lo, hi));
    r.read = [key, ref, lo, hi](ConfigNode& n, S& s) {
      auto& v = std::invoke(ref, s);
      std::vector<double> def(v.begin(), v.end());
      auto got = n.numbers(key, def);
      v.clear();
      for (double x : got) {
        if (x != std::floor(x) || x < double(lo) || x > double(hi))
          n.fail(key, fmt::format("{} is not an integer in [{}, {}]", x, lo, hi));
        v.push_back(static_cast<typename std::remove_reference_t<decltype(v)>::value_type>(x));
      }
    };
    r.show = [ref](const S& s) {
      return list_text(value(ref, s), [](auto x) { return fmt::format("{}", int64_t(x)); });
    };
    r.validate = [key, ref, lo, hi](const S& s, const std::string& where) {
      for (auto x : value(ref, s))
        if (int64_t(x) < lo || int64_t(x) > hi)
          throw ConfigError(fmt::format("{}: {} holds {}, not in [{}, {}]", where, key, int64_t(x), lo, hi));
    };
    return add(std::move(r), key, ref);
  }
  // A list of strings, each one of `choices` (empty: any).
  template <class Ref>
  OptionTable& strings(std::string key, Ref ref, std::vector<std::string> choices, std::string help) {
    Row r = start(key, std::move(help), choices.empty() ? "list of text" : fmt::format("list of {}", fmt::join(choices, ", ")));
    r.read = [key, ref, choices](ConfigNode& n, S& s) {
      auto& v = std::invoke(ref, s);
      v = n.strings(key, v);
      if (choices.empty()) return;
      for (const auto& x : v)
        if (std::find(choices.begin(), choices.end(), x) == choices.end())
          n.fail(key, fmt::format("unknown value '{}'; known: {}", x, fmt::join(choices, ", ")));
    };
    r.show = [ref](const S& s) {
      return list_text(value(ref, s), [](const std::string& x) { return "\"" + x + "\""; });
    };
    return add(std::move(r), key, ref);
  }
  // Every row of `sub`, reached through `ref` (S& -> T&); `keys` non-empty: only those rows.
  template <class T, class Ref>
  OptionTable& include(const OptionTable<T>& sub, Ref ref, const std::vector<std::string>& keys = {}) {
    for (const auto& k : keys) sub.row(k);  // a misspelt key in the list throws instead of dropping a row
    for (const auto& row : sub.rows()) {
      if (!keys.empty() && std::find(keys.begin(), keys.end(), row.key) == keys.end()) continue;
      Row r = start(row.key, row.help, row.range);
      r.read = [row, ref](ConfigNode& n, S& s) { row.read(n, std::invoke(ref, s)); };
      r.show = [row, ref](const S& s) { return row.show(value(ref, s)); };
      r.save = [row, ref](const S& s, nlohmann::json& j) { row.save(value(ref, s), j); };
      r.load = [row, ref](const nlohmann::json& j, S& s) { row.load(j, std::invoke(ref, s)); };
      if (row.validate)
        r.validate = [row, ref](const S& s, const std::string& where) { row.validate(value(ref, s), where); };
      rows_.push_back(std::move(r));
    }
    for (const auto& c : sub.checks()) checks_.push_back([c, ref](ConfigNode& n, const S& s) { c(n, value(ref, s)); });
    return *this;
  }
  // The last row is read only when `applies(s)` (a key of one data source, say); its help says
  // when, in `condition`. Elsewhere the key is unknown, as if the row were absent.
  OptionTable& when(std::function<bool(const S&)> applies, const std::string& condition) {
    auto& r = rows_.back();
    r.read = [read = r.read, applies](ConfigNode& n, S& s) {
      if (applies(s)) read(n, s);
    };
    r.help = condition + ": " + r.help;
    return *this;
  }
  // A hand-made row (a value with its own shape, e.g. an [min, max] pair).
  OptionTable& custom(Row r) {
    rows_.push_back(std::move(r));
    return *this;
  }
  // A check across keys, run after the rows are read (e.g. t_min <= t_max).
  OptionTable& check(Check c) {
    checks_.push_back(std::move(c));
    return *this;
  }

  // Reads every row from `n` into `s` (its current values are the defaults), then the checks.
  void read(ConfigNode& n, S& s) const {
    for (const auto& r : rows_) r.read(n, s);
    for (const auto& c : checks_) c(n, s);
  }
  // Reads only `key`'s row (a key that selects a preset is read before the preset is applied).
  void read_key(ConfigNode& n, S& s, const std::string& key) const { row(key).read(n, s); }
  nlohmann::json to_json(const S& s) const {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& r : rows_) r.save(s, j);
    return j;
  }
  // The number and integer rows' ranges, for a struct not read from TOML (metadata, code): ConfigError
  // "where: key = value must be in [lo, hi]".
  void validate(const S& s, const std::string& where) const {
    for (const auto& r : rows_)
      if (r.validate) r.validate(s, where);
  }
  // Throws IoError "no 'key'" for the first key of the table `j` lacks, `optional` keys excepted
  // (metadata keys added after files were shipped).
  void require_keys(const nlohmann::json& j, const std::vector<std::string>& optional = {}) const {
    for (const auto& r : rows_)
      if (!j.contains(r.key) && std::find(optional.begin(), optional.end(), r.key) == optional.end())
        throw IoError(fmt::format("no '{}'", r.key));
  }
  // Keys absent from `j` keep s's values (metadata written before a key existed). Values outside
  // their row's range are refused like a config's (IoError "metadata: key = value must be in ..."):
  // a file's description is untrusted input too.
  void from_json(const nlohmann::json& j, S& s) const {
    for (const auto& r : rows_) {
      try {
        r.load(j, s);
      } catch (const nlohmann::json::exception& e) {
        throw IoError(fmt::format("metadata {}: {}", r.key, e.what()));
      }
    }
    try {
      validate(s, "metadata");
    } catch (const ConfigError& e) {
      throw IoError(e.what());
    }
  }
  // | key | default | range | meaning |, defaults from `defaults`.
  std::string markdown(const S& defaults = S{}) const {
    std::string out = "| key | default | range | meaning |\n|---|---|---|---|\n";
    for (const auto& r : rows_)
      out += fmt::format("| `{}` | `{}` | {} | {} |\n", r.key, r.show(defaults), escape(r.range), escape(r.help));
    return out;
  }
  // The keys whose value differs between `a` and `b`, as "key = value" of b (a preset's effect).
  std::string differences(const S& a, const S& b) const {
    std::vector<std::string> out;
    for (const auto& r : rows_)
      if (r.show(a) != r.show(b)) out.push_back(fmt::format("`{} = {}`", r.key, r.show(b)));
    return fmt::format("{}", fmt::join(out, ", "));
  }
  const Row& row(const std::string& key) const {
    for (const auto& r : rows_)
      if (r.key == key) return r;
    throw Error(fmt::format("option table has no key '{}'", key));
  }
  const std::vector<Row>& rows() const { return rows_; }
  const std::vector<Check>& checks() const { return checks_; }

 private:
  // The member `ref` reaches in a const struct (accessors are written for S&; they only return a reference).
  template <class Ref>
  static decltype(auto) value(const Ref& ref, const S& s) {
    return std::invoke(ref, const_cast<S&>(s));
  }
  static Row start(std::string key, std::string help, std::string range) {
    Row r;
    r.key = std::move(key);
    r.help = std::move(help);
    r.range = std::move(range);
    return r;
  }
  static std::string escape(const std::string& s) {
    std::string out;
    for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
    return out;
  }
  // "[a, b, c]" of `v`'s elements as `text` writes each.
  template <class V, class Text>
  static std::string list_text(const V& v, Text text) {
    std::vector<std::string> parts;
    for (const auto& x : v) parts.push_back(text(x));
    return fmt::format("[{}]", fmt::join(parts, ", "));
  }
  // A row whose value is `ref`'s member as JSON holds it: adds the JSON save and load, appends it.
  template <class Ref>
  OptionTable& add(Row r, const std::string& key, Ref ref) {
    add_json(r, key, ref);
    rows_.push_back(std::move(r));
    return *this;
  }
  template <class Ref>
  static void add_json(Row& r, const std::string& key, Ref ref) {
    r.save = [key, ref](const S& s, nlohmann::json& j) { j[key] = value(ref, s); };
    r.load = [key, ref](const nlohmann::json& j, S& s) {
      if (!j.contains(key)) return;
      auto& v = std::invoke(ref, s);
      v = json_value<std::remove_reference_t<decltype(v)>>(j.at(key), key);
    };
  }
  // j as a T, refusing what nlohmann's get<> would convert with undefined behaviour (a float of 1e76
  // into an int64_t; found by fuzz/model_metadata.cpp): integers must be JSON integers within T's
  // range, lists are checked element by element.
  template <class T>
  static T json_value(const nlohmann::json& j, const std::string& key) {
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      const bool fits = j.is_number_unsigned()  ? j.get<uint64_t>() <= uint64_t(std::numeric_limits<T>::max())
                        : j.is_number_integer() ? (j.get<int64_t>() >= int64_t(std::numeric_limits<T>::min()) &&
                                                   (j.get<int64_t>() < 0 || uint64_t(j.get<int64_t>()) <=
                                                                                uint64_t(std::numeric_limits<T>::max())))
                                                : false;
      if (!fits) throw IoError(fmt::format("metadata {}: {} is not an integer in range", key, j.dump()));
      return j.get<T>();
    } else if constexpr (is_std_vector<T>::value) {
      if (!j.is_array()) throw IoError(fmt::format("metadata {}: expected a list, got {}", key, j.dump()));
      T out;
      for (const auto& x : j) out.push_back(json_value<typename T::value_type>(x, key));
      return out;
    } else {
      return j.get<T>();
    }
  }
  std::vector<Row> rows_;
  std::vector<Check> checks_;
};

}  // namespace retort
