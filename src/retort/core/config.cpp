#include "retort/core/config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join ({fmt} 11 moved it here)

#include <cmath>
#include <sstream>

#include "retort/core/error.h"

namespace retort {

namespace {

// "a.b.c=VALUE" (or "run.0.lr=VALUE" for the first [[run]]): VALUE is a TOML value when it parses
// as one (3e-3, true, [999, 499], "text"), else it is taken as text (dmd2).
void apply_override(toml::table& root, const std::string& item) {
  const auto eq = item.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError(fmt::format("--set {}: expected KEY=VALUE, e.g. distill.gan_weight=3e-3", item));
  const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    auto dot = key.find('.', start);
    parts.push_back(key.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  for (const auto& p : parts)
    if (p.empty()) throw ConfigError(fmt::format("--set {}: empty key component", item));
  toml::table* table = &root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    auto* next = table->get(parts[i]);
    if (!next) next = table->insert_or_assign(parts[i], toml::table{}).first->second.as_table();
    if (auto* arr = next->as_array()) {  // [[run]]: the next part is an index
      ++i;
      size_t idx = 0;
      try {
        idx = std::stoul(parts.at(i));
      } catch (const std::exception&) {
        throw ConfigError(fmt::format("--set {}: {} is a list of tables; give an index, e.g. {}.0.KEY", item, parts[i - 1],
                                      parts[i - 1]));
      }
      if (idx >= arr->size() || !(*arr)[idx].as_table())
        throw ConfigError(fmt::format("--set {}: {} has {} tables", item, parts[i - 1], arr->size()));
      if (i + 1 >= parts.size()) throw ConfigError(fmt::format("--set {}: name a key inside the table", item));
      next = &(*arr)[idx];
    }
    table = next->as_table();
    if (!table) throw ConfigError(fmt::format("--set {}: '{}' is a value, not a table", item, parts[i]));
  }
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + value);
  } catch (const toml::parse_error&) {
    parsed.insert_or_assign("v", value);
  }
  table->insert_or_assign(parts.back(), *parsed.get("v"));
}

toml::table parse_toml_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw ConfigError(fmt::format("{}: config file not found", path.string()));
  try {
    return toml::parse_file(path.string());
  } catch (const toml::parse_error& e) {
    throw ConfigError(fmt::format("{}:{}:{}: {}", path.string(), e.source().begin.line,
                                  e.source().begin.column, e.description()));
  }
}

// `base = "FILE"` (relative to the file that names it): every top-level key or table of FILE that
// this file does not set is taken from FILE; a table the file sets replaces the base's whole, so a
// target or a run list is never half inherited. Bases may have bases; `chain` catches cycles.
toml::table parse_with_base(const std::filesystem::path& path, std::vector<std::filesystem::path>& chain) {
  auto root = parse_toml_file(path);
  const auto* base = root.get("base");
  if (!base) return root;
  const auto name = base->value<std::string>();
  if (!name || name->empty())
    throw ConfigError(fmt::format("{}: base: expected the path of a config file, e.g. base = \"gmm-ring8-fit.toml\"",
                                  path.string()));
  const auto base_path = path.parent_path() / *name;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(base_path, ec))
    throw ConfigError(fmt::format("{}: base: {} not found", path.string(), base_path.string()));
  const auto id = std::filesystem::weakly_canonical(base_path, ec);
  for (const auto& seen : chain)
    if (seen == id)
      throw ConfigError(
          fmt::format("{}: base: {} is already a base of this file (a cycle)", path.string(), base_path.string()));
  chain.push_back(id);
  auto inherited = parse_with_base(base_path, chain);
  root.erase("base");
  for (auto&& [key, value] : inherited)
    if (!root.contains(key.str())) root.insert(key.str(), value);
  return root;
}

}  // namespace

ConfigNode ConfigNode::from_file(const std::filesystem::path& path, const std::vector<std::string>& overrides) {
  auto shared = std::make_shared<Shared>();
  shared->source = path.string();
  std::error_code ec;
  std::vector<std::filesystem::path> chain = {std::filesystem::weakly_canonical(path, ec)};
  shared->root = parse_with_base(path, chain);
  for (const auto& o : overrides) apply_override(shared->root, o);
  return ConfigNode(shared, &shared->root, &shared->resolved, "");
}

ConfigNode ConfigNode::from_string(const std::string& text, const std::string& source_name,
                                   const std::vector<std::string>& overrides) {
  auto shared = std::make_shared<Shared>();
  shared->source = source_name;
  try {
    shared->root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    throw ConfigError(fmt::format("{}:{}:{}: {}", source_name, e.source().begin.line,
                                  e.source().begin.column, e.description()));
  }
  for (const auto& o : overrides) apply_override(shared->root, o);
  return ConfigNode(shared, &shared->root, &shared->resolved, "");
}

ConfigNode ConfigNode::with_overrides(const std::vector<std::string>& overrides) const {
  auto shared = std::make_shared<Shared>();
  shared->source = shared_->source;
  shared->root = shared_->root;
  for (const auto& o : overrides) apply_override(shared->root, o);
  return ConfigNode(shared, &shared->root, &shared->resolved, "");
}

ConfigNode::ConfigNode(std::shared_ptr<Shared> shared, toml::table* node, toml::table* out,
                       std::string path)
    : shared_(std::move(shared)),
      node_(node),
      out_(out),
      path_(std::move(path)),
      read_(std::make_shared<std::set<std::string>>()),
      children_(std::make_shared<std::vector<ConfigNode>>()) {}

std::string ConfigNode::dotted(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

std::string ConfigNode::where(const std::string& key) const {
  return fmt::format("{}: {}", shared_->source, dotted(key));
}

void ConfigNode::fail(const std::string& key, const std::string& message) const {
  throw ConfigError(fmt::format("{}: {}", where(key), message));
}

toml::node* ConfigNode::get(const std::string& key) {
  read_->insert(key);
  return node_ ? node_->get(key) : nullptr;
}

bool ConfigNode::has(const std::string& key) const { return node_ && node_->contains(key); }

namespace {
std::string type_name(const toml::node& n) {
  std::ostringstream os;
  os << n.type();
  return os.str();
}
}  // namespace

double ConfigNode::number(const std::string& key, double def) {
  double v = def;
  if (auto* n = get(key)) {
    if (auto d = n->value_exact<double>()) v = *d;
    else if (auto i = n->value_exact<int64_t>()) v = static_cast<double>(*i);
    else fail(key, fmt::format("expected a number, got a {}", type_name(*n)));
    if (!std::isfinite(v)) fail(key, "expected a finite number");
  }
  out_->insert_or_assign(key, v);
  return v;
}

double ConfigNode::number(const std::string& key, double def, double min, double max) {
  double v = number(key, def);
  if (v < min || v > max) fail(key, fmt::format("{} is out of range [{}, {}]", v, min, max));
  return v;
}

int64_t ConfigNode::integer(const std::string& key, int64_t def, int64_t min, int64_t max) {
  int64_t v = def;
  if (auto* n = get(key)) {
    auto i = n->value_exact<int64_t>();
    if (!i) fail(key, fmt::format("expected an integer, got a {}", type_name(*n)));
    v = *i;
  }
  if (v < min || v > max) fail(key, fmt::format("{} is out of range [{}, {}]", v, min, max));
  out_->insert_or_assign(key, v);
  return v;
}

bool ConfigNode::boolean(const std::string& key, bool def) {
  bool v = def;
  if (auto* n = get(key)) {
    auto b = n->value_exact<bool>();
    if (!b) fail(key, fmt::format("expected true or false, got a {}", type_name(*n)));
    v = *b;
  }
  out_->insert_or_assign(key, v);
  return v;
}

std::string ConfigNode::string(const std::string& key, const std::string& def) {
  std::string v = def;
  if (auto* n = get(key)) {
    auto s = n->value_exact<std::string>();
    if (!s) fail(key, fmt::format("expected a string, got a {}", type_name(*n)));
    v = *s;
  }
  out_->insert_or_assign(key, v);
  return v;
}

std::string ConfigNode::choice(const std::string& key, const std::string& def,
                               const std::vector<std::string>& choices) {
  std::string v = string(key, def);
  for (const auto& c : choices)
    if (c == v) return v;
  fail(key, fmt::format("unknown value '{}'; known: {}", v, fmt::join(choices, ", ")));
}

template <class T, class Element>
std::vector<T> ConfigNode::array(const std::string& key, const std::vector<T>& def, const char* what,
                                 Element element) {
  std::vector<T> v = def;
  if (auto* n = get(key)) {
    auto* arr = n->as_array();
    if (!arr) fail(key, fmt::format("expected an array of {}, got a {}", what, type_name(*n)));
    v.clear();
    for (size_t i = 0; i < arr->size(); ++i) v.push_back(element((*arr)[i], i));
  }
  toml::array out;
  for (const auto& x : v) out.push_back(x);
  out_->insert_or_assign(key, out);
  return v;
}

std::vector<double> ConfigNode::numbers(const std::string& key, const std::vector<double>& def) {
  return array<double>(key, def, "numbers", [&](const toml::node& e, size_t i) {
    double d = 0;
    if (auto x = e.value_exact<double>()) d = *x;
    else if (auto k = e.value_exact<int64_t>()) d = static_cast<double>(*k);
    else fail(key, fmt::format("element {} is a {}, expected a number", i, type_name(e)));
    if (!std::isfinite(d)) fail(key, fmt::format("element {} is not finite", i));
    return d;
  });
}

std::vector<std::string> ConfigNode::strings(const std::string& key, const std::vector<std::string>& def) {
  return array<std::string>(key, def, "strings", [&](const toml::node& e, size_t i) {
    auto str = e.value_exact<std::string>();
    if (!str) fail(key, fmt::format("element {} is a {}, expected a string", i, type_name(e)));
    return *str;
  });
}

std::vector<std::vector<double>> ConfigNode::matrix(const std::string& key) {
  std::vector<std::vector<double>> rows;
  auto* n = get(key);
  if (!n) return rows;
  auto* arr = n->as_array();
  if (!arr) fail(key, fmt::format("expected an array of rows, got a {}", type_name(*n)));
  toml::array out;
  for (size_t r = 0; r < arr->size(); ++r) {
    auto* row = (*arr)[r].as_array();
    if (!row) fail(key, fmt::format("row {} is not an array", r));
    std::vector<double> vals;
    toml::array out_row;
    for (size_t c = 0; c < row->size(); ++c) {
      const auto& e = (*row)[c];
      double d;
      if (auto x = e.value_exact<double>()) d = *x;
      else if (auto k = e.value_exact<int64_t>()) d = static_cast<double>(*k);
      else fail(key, fmt::format("element [{}][{}] is a {}, expected a number", r, c, type_name(e)));
      if (!std::isfinite(d)) fail(key, fmt::format("element [{}][{}] is not finite", r, c));
      vals.push_back(d);
      out_row.push_back(d);
    }
    rows.push_back(std::move(vals));
    out.push_back(std::move(out_row));
  }
  out_->insert_or_assign(key, out);
  return rows;
}

ConfigNode ConfigNode::table(const std::string& key) {
  toml::table* sub = nullptr;
  if (auto* n = get(key)) {
    sub = n->as_table();
    if (!sub) fail(key, fmt::format("expected a table, got a {}", type_name(*n)));
  }
  // Reuse the output table if the key was read before: replacing it would dangle earlier children.
  toml::table* out = out_->get_as<toml::table>(key);
  if (!out) out = out_->insert_or_assign(key, toml::table{}).first->second.as_table();
  ConfigNode child(shared_, sub, out, dotted(key));
  children_->push_back(child);
  return child;
}

std::vector<ConfigNode> ConfigNode::tables(const std::string& key) {
  std::vector<ConfigNode> list;
  auto* n = get(key);
  if (!n) return list;
  auto* arr = n->as_array();
  if (!arr || !arr->is_array_of_tables())
    fail(key, fmt::format("expected an array of tables ([[{}]]), got a {}", key, type_name(*n)));
  auto [it, inserted] = out_->insert_or_assign(key, toml::array{});
  auto* out_arr = it->second.as_array();
  for (size_t i = 0; i < arr->size(); ++i) out_arr->push_back(toml::table{});
  for (size_t i = 0; i < arr->size(); ++i) {
    ConfigNode child(shared_, (*arr)[i].as_table(), (*out_arr)[i].as_table(),
                     fmt::format("{}[{}]", dotted(key), i));
    children_->push_back(child);
    list.push_back(child);
  }
  return list;
}

void ConfigNode::ignore(const std::vector<std::string>& keys) {
  for (const auto& k : keys) read_->insert(k);
}

void ConfigNode::finish() const {
  if (node_) {
    for (const auto& [k, v] : *node_) {
      std::string key(k.str());
      if (!read_->count(key)) fail(key, "unknown key (misspelt, or not used by this command)");
    }
  }
  for (const auto& c : *children_) c.finish();
}

std::string ConfigNode::resolved_toml() const {
  std::ostringstream os;
  os << shared_->resolved;
  return os.str();
}

}  // namespace retort

namespace retort {
std::string ConfigNode::resolved_here() const {
  std::ostringstream os;
  os << *out_;
  return os.str();
}
}  // namespace retort
