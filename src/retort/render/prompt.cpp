#include "retort/render/prompt.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>

#include "retort/core/error.h"

namespace retort {
namespace {

std::optional<int64_t> index_of(const std::vector<std::string>& names, const std::string& word) {
  auto it = std::find(names.begin(), names.end(), word);
  if (it == names.end()) return std::nullopt;
  return int64_t(it - names.begin());
}

// Lower-cased words, with each comma as a word of its own.
std::vector<std::string> tokenize(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) out.push_back(cur), cur.clear();
  };
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isspace(c)) flush();
    else if (ch == ',') flush(), out.push_back(",");
    else cur += char(std::tolower(c));
  }
  flush();
  return out;
}

bool is_article(const std::string& w) { return w == "a" || w == "an"; }

std::optional<int64_t> colour_of(const std::string& w) {
  return index_of(colour_names(), w == "gray" ? std::string("grey") : w);
}

void check_id(int64_t id, int64_t n, const char* what) {
  if (id < 0 || id >= n) throw Error(fmt::format("{} id {} is out of range [0, {})", what, id, n));
}

}  // namespace

const std::vector<std::string>& view_names() {
  static const std::vector<std::string> names = {"front", "side", "back", "overhead"};
  return names;
}

std::string vocabulary() {
  return fmt::format("articles: a, an; colours: {}; shapes: {}; views: {} (optionally followed by 'view')",
                     fmt::join(colour_names(), ", "), fmt::join(shape_names(), ", "), fmt::join(view_names(), ", "));
}

Prompt parse_prompt(std::string_view text) {
  const auto words = tokenize(text);
  auto fail = [&](const std::string& what) -> Error {
    return Error(fmt::format("prompt \"{}\": {}; vocabulary: {}", text, what, vocabulary()));
  };
  for (const auto& w : words)
    if (w != "," && w != "view" && !is_article(w) && !colour_of(w) && !index_of(shape_names(), w) &&
        !index_of(view_names(), w))
      throw fail(fmt::format("unknown word '{}'", w));

  size_t k = 0;
  auto expect = [&](const char* what) -> const std::string& {
    if (k >= words.size()) throw fail(fmt::format("missing {} at the end", what));
    return words[k];
  };
  if (k < words.size() && is_article(words[k])) ++k;
  Prompt p;
  const auto& cw = expect("a colour");
  auto colour = colour_of(cw);
  if (!colour) throw fail(fmt::format("expected a colour, got '{}'", cw));
  p.colour = Colour(*colour), ++k;
  const auto& sw = expect("a shape");
  auto shape = index_of(shape_names(), sw);
  if (!shape) throw fail(fmt::format("expected a shape after the colour, got '{}'", sw));
  p.shape = Shape(*shape), ++k;
  if (k < words.size() && words[k] == ",") ++k;
  if (k < words.size()) {
    auto view = index_of(view_names(), words[k]);
    if (!view) throw fail(fmt::format("expected a view after the shape, got '{}'", words[k]));
    p.view = View(*view), ++k;
    if (k < words.size() && words[k] == "view") ++k;
  } else if (!words.empty() && words.back() == ",") {
    throw fail("missing a view after ','");
  }
  if (k < words.size()) throw fail(fmt::format("unexpected '{}' after the end of the prompt", words[k]));
  return p;
}

std::string prompt_text(const Prompt& p) {
  const std::string& colour = colour_name(p.colour);
  const char* article = std::string_view("aeiou").find(colour[0]) != std::string_view::npos ? "an" : "a";
  std::string s = fmt::format("{} {} {}", article, colour, shape_name(p.shape));
  if (p.view) s += fmt::format(", {} view", view_name(*p.view));
  return s;
}

int64_t object_class(Shape s, Colour c) {
  shape_name(s), colour_name(c);  // range checks
  return int64_t(s) * kNumColours + int64_t(c);
}

int64_t prompt_class(Shape s, Colour c, View v) {
  check_id(int64_t(v), kNumViews, "view");
  return object_class(s, c) * kNumViews + int64_t(v);
}

Prompt prompt_from_object_class(int64_t id) {
  check_id(id, kNumObjectClasses, "object class");
  return Prompt{Shape(id / kNumColours), Colour(id % kNumColours), std::nullopt};
}

Prompt prompt_from_prompt_class(int64_t id) {
  check_id(id, kNumPromptClasses, "prompt class");
  auto p = prompt_from_object_class(id / kNumViews);
  p.view = View(id % kNumViews);
  return p;
}

std::vector<std::string> object_class_names() {
  std::vector<std::string> names;
  for (int64_t i = 0; i < kNumObjectClasses; ++i) names.push_back(prompt_text(prompt_from_object_class(i)));
  return names;
}

std::vector<std::string> prompt_class_names() {
  std::vector<std::string> names;
  for (int64_t i = 0; i < kNumPromptClasses; ++i) names.push_back(prompt_text(prompt_from_prompt_class(i)));
  return names;
}

}  // namespace retort
