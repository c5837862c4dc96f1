#include "retort/models/script_contract.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <algorithm>

#include "retort/core/error.h"

namespace retort {

const OptionTable<ScriptContract>& script_contract_table() {
  static const auto table = [] {
    using C = ScriptContract;
    OptionTable<C> t;
    t.named("prediction", &C::prediction, {"eps", "x0", "v"}, "what the method returns")
        .choice("time", &C::time, {"discrete", "continuous"},
                "t as passed: the int64 step 0..T-1, or float time in [0, 1]")
        .named("schedule", [](C& c) -> ScheduleKind& { return c.schedule.kind; }, schedule_kind_names(),
               "noise schedule the model was trained on")
        .integer("schedule_steps", [](C& c) -> int64_t& { return c.schedule.steps; }, 2, 100000, "schedule T")
        .flag("schedule_continuous", [](C& c) -> bool& { return c.schedule.continuous; },
              "the schedule's closed form in t instead of its T-step table")
        .integer("channels", &C::channels, 1, 64, "image channels")
        .integer("resolution", &C::resolution, 0, 4096, "image height = width (0 with dim: points)")
        .integer("dim", &C::dim, 0, 1'000'000, "> 0: the model is of points x [B, dim] (bench-gmm), not images")
        .integer("frames", &C::frames, 0, 1024, "> 0: a video model, x [B, frames, channels, H, W]")
        .integer("concat_channels", &C::concat_channels, 0, 64,
                 "> 0: cond is float render channels [B, (frames,) concat_channels, H, W] instead of a class")
        .integer("num_classes", &C::num_classes, 0, 1'000'000, "classes of cond (0: unconditional)")
        .integer("null_class", &C::null_class, -1, 1'000'000, "cond's label for no condition (-1: num_classes)")
        .text("method", &C::method, "the method to call: (x_t, t, cond) -> Tensor")
        .text("features", &C::features,
              "a method (x_t, t, cond) -> List[Tensor] of encoder features, bottleneck last (\"\": none)");
    return t;
  }();
  return table;
}

std::vector<std::string> optional_contract_keys() {
  return {"schedule_continuous", "null_class", "method", "features", "dim", "frames", "concat_channels"};
}

namespace {

// What no option table checks: the choice of `time` (JSON values bypass the choice check), a null
// class that is one of the classes, an empty method name. `fail(key, message)` does not return.
template <class Fail>
void check_contract(const ScriptContract& c, Fail fail) {
  if (c.time != "discrete" && c.time != "continuous")
    fail("time", fmt::format("time = \"{}\" must be \"discrete\" or \"continuous\"", c.time));
  if (c.null_class >= 0 && c.num_classes > 0 && c.null_class < c.num_classes)
    fail("null_class", fmt::format("null_class = {} is one of the {} classes", c.null_class, c.num_classes));
  if (c.method.empty()) fail("method", "method = \"\" names no method");
  if (c.concat_channels > 0 && c.num_classes > 0)
    fail("concat_channels", "cond is either a class (num_classes) or render channels (concat_channels), not both");
  if ((c.frames > 0 || c.concat_channels > 0) && c.dim > 0)
    fail("dim", "a model of points (dim) has no frames or render channels");
}

}  // namespace

ScriptContract parse_script_contract(const std::string& json_text) {
  auto j = nlohmann::json::parse(json_text);
  if (!j.is_object()) throw IoError("not a JSON object");
  ScriptContract c;
  auto optional = optional_contract_keys();
  if (j.contains("dim") && j.at("dim").is_number_integer() && j.at("dim").get<int64_t>() > 0)
    optional.insert(optional.end(), {"channels", "resolution"});
  script_contract_table().require_keys(j, optional);
  script_contract_table().from_json(j, c);
  check_contract(c, [](const std::string&, const std::string& message) { throw IoError(message); });
  return c;
}

ScriptContract read_script_contract(ConfigNode& n) {
  auto optional = optional_contract_keys();
  if (n.has("dim")) optional.insert(optional.end(), {"channels", "resolution"});  // points, not images
  for (const auto& row : script_contract_table().rows())
    if (!n.has(row.key) && std::find(optional.begin(), optional.end(), row.key) == optional.end())
      n.fail(row.key, "missing: a TorchScript teacher's contract needs it (" + row.help + ")");
  ScriptContract c;
  script_contract_table().read(n, c);
  check_contract(c, [&n](const std::string& key, const std::string& message) { n.fail(key, message); });
  return c;
}

}  // namespace retort
