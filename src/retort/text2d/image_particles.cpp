#include "retort/text2d/image_particles.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join ({fmt} 11 moved it here)

#include "retort/core/error.h"
#include "retort/render/prompt.h"

namespace retort {

ImageParticlesImpl::ImageParticlesImpl(const torch::Tensor& l, int64_t channels, int64_t resolution, double init_std,
                                       Rng& rng) {
  if (l.dim() != 1 || l.size(0) < 1) throw Error("image particles: need labels [N] with N >= 1");
  const int64_t n = l.size(0);
  particles = register_parameter("particles", rng.randn({n, channels, resolution, resolution}) * init_std);
  labels = register_buffer("labels", l.to(torch::kInt64).clone());
}

GenBatch ImageParticlesImpl::draw(int64_t batch, Rng& rng) {
  const int64_t n = count();
  if (batch >= n) return {particles, Cond::classes(labels)};
  auto idx = rng.rand({n}).argsort().narrow(0, 0, batch).to(particles.device());
  return {particles.index_select(0, idx), Cond::classes(labels.index_select(0, idx))};
}

GenBatch ImageParticlesImpl::draw_eval(int64_t, Rng&) {
  return {particles.detach().clone(), Cond::classes(labels.clone())};
}

const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> names = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                                 "sandal",  "shirt",   "sneaker",  "bag",   "ankle boot"};
  return names;
}

namespace {

std::string lower_trimmed(const std::string& s) {
  std::string out;
  for (char ch : s) out += char(std::tolower(static_cast<unsigned char>(ch)));
  auto b = out.find_first_not_of(" \t"), e = out.find_last_not_of(" \t");
  return b == std::string::npos ? "" : out.substr(b, e - b + 1);
}

// -1 when `s` is not a non-negative integer.
int64_t class_id(const std::string& s) {
  if (s.empty() || s.size() > 9 || !std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(c); })) return -1;
  return std::stoll(s);
}

int64_t fashion_class(const std::string& s) {
  const auto& names = fashion_mnist_class_names();
  for (size_t i = 0; i < names.size(); ++i)
    if (s == names[i]) return int64_t(i);
  if (s == "t-shirt/top" || s == "top" || s == "tshirt") return 0;
  return -1;
}

}  // namespace

std::string prompt_problem(const std::string& prompt) {
  const auto p = lower_trimmed(prompt);
  if (class_id(p) >= 0 || fashion_class(p) >= 0) return "";
  try {
    parse_prompt(p);
    return "";
  } catch (const Error& e) {
    return fmt::format("'{}' is neither a class id, a Fashion-MNIST class ({}) nor a world prompt ({})", prompt,
                       fmt::join(fashion_mnist_class_names(), ", "), e.what());
  }
}

std::vector<int64_t> prompt_labels(const std::string& prompt, int64_t num_classes, int64_t count) {
  const auto p = lower_trimmed(prompt);
  if (int64_t id = class_id(p); id >= 0) {
    if (id >= num_classes)
      throw ConfigError(fmt::format("prompts: class {} but the teacher has {} classes (0..{})", id, num_classes,
                                    num_classes - 1));
    return std::vector<int64_t>(size_t(count), id);
  }
  if (num_classes == 10) {
    int64_t id = fashion_class(p);
    if (id < 0)
      throw ConfigError(fmt::format("prompts: '{}': the 10-class (Fashion-MNIST) teacher takes a class name ({}) or "
                                    "a class id 0..9",
                                    prompt, fmt::join(fashion_mnist_class_names(), ", ")));
    return std::vector<int64_t>(size_t(count), id);
  }
  if (num_classes == kNumPromptClasses) {
    Prompt parsed;
    try {
      parsed = parse_prompt(p);
    } catch (const Error& e) {
      throw ConfigError(fmt::format("prompts: '{}': the world teacher takes a prompt like \"a red torus, front view\": {}",
                                    prompt, e.what()));
    }
    std::vector<int64_t> out;
    for (int64_t i = 0; i < count; ++i)
      out.push_back(prompt_class(parsed.shape, parsed.colour, parsed.view ? *parsed.view : View(i % kNumViews)));
    return out;
  }
  throw ConfigError(fmt::format("prompts: '{}': a teacher with {} classes takes class ids 0..{}", prompt, num_classes,
                                num_classes - 1));
}

std::string prompt_slug(const std::string& prompt) {
  std::string s;
  for (char ch : lower_trimmed(prompt)) {
    if (std::isalnum(static_cast<unsigned char>(ch)))
      s += ch;
    else if (!s.empty() && s.back() != '-')
      s += '-';
  }
  while (!s.empty() && s.back() == '-') s.pop_back();
  if (s.rfind("a-", 0) == 0) s = s.substr(2);
  if (s.rfind("an-", 0) == 0) s = s.substr(3);
  return s.empty() ? "prompt" : s;
}

}  // namespace retort
