#include "retort/models/torchscript_export.h"

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join ({fmt} 11 moved it here)

#include <cmath>
#include <sstream>

#include "retort/core/error.h"

namespace retort {

namespace {

// The TorchScript attribute of a UNet parameter: its dotted name with '.' -> '_'.
std::string attr(const std::string& dotted) {
  std::string s = dotted;
  for (auto& c : s)
    if (c == '.') c = '_';
  return "self." + s;
}

// Enough digits that the double survives the round trip through text.
std::string num(double v) { return fmt::format("{:.17g}", v); }

// The helpers of the UNet: embedding, residual block (with and without a 1x1 skip), attention.
std::string unet_helpers(const UNetOptions& o) {
  const int64_t half = o.time_dim / 2;
  std::string src = fmt::format(R"(
def _embed(self, t: Tensor, cond: Tensor) -> Tensor:
    freqs = torch.exp({} * torch.arange({}, device=t.device).float() / {})
    args = (t.float() * 1000.0).unsqueeze(1) * freqs.unsqueeze(0)
    f = torch.cat([args.sin(), args.cos()], 1)
    emb = torch.linear(torch.silu(torch.linear(f, self.time_mlp_0_weight, self.time_mlp_0_bias)),
                       self.time_mlp_2_weight, self.time_mlp_2_bias)
)", num(-std::log(10000.0)), half, half);
  if (o.num_classes > 0)
    src += fmt::format(R"(    idx = torch.where(cond < 0, torch.full_like(cond, {}), cond)
    emb = emb + torch.embedding(self.class_embed_weight, idx)
)", o.num_classes);
  src += "    return emb\n";
  const std::string res_body = fmt::format(R"(
    h = torch.conv2d(torch.silu(torch.group_norm(x, {0}, n1w, n1b, 1e-5)), c1w, c1b, [1, 1], [1, 1])
    h = h + torch.linear(torch.silu(emb), ew, eb).unsqueeze(-1).unsqueeze(-1)
    h = torch.conv2d(torch.silu(torch.group_norm(h, {0}, n2w, n2b, 1e-5)), c2w, c2b, [1, 1], [1, 1])
)", o.groups);
  const std::string res_args = "x: Tensor, emb: Tensor, n1w: Tensor, n1b: Tensor, c1w: Tensor, c1b: Tensor, "
                               "ew: Tensor, eb: Tensor, n2w: Tensor, n2b: Tensor, c2w: Tensor, c2b: Tensor";
  src += "\ndef _res(self, " + res_args + ") -> Tensor:" + res_body + "    return x + h\n";
  src += "\ndef _res_skip(self, " + res_args + ", sw: Tensor, sb: Tensor) -> Tensor:" + res_body +
         "    return torch.conv2d(x, sw, sb) + h\n";
  if (o.heads > 0)
    src += fmt::format(R"(
def _attn(self, x: Tensor, nw: Tensor, nb: Tensor, qw: Tensor, qb: Tensor, pw: Tensor, pb: Tensor) -> Tensor:
    B, C, H, W = x.size(0), x.size(1), x.size(2), x.size(3)
    d = C // {0}
    qkv = torch.conv2d(torch.group_norm(x, {1}, nw, nb, 1e-5), qw, qb).reshape([B, 3, {0}, d, H * W])
    q = qkv.select(1, 0).reshape([B * {0}, d, H * W]).transpose(1, 2)
    k = qkv.select(1, 1).reshape([B * {0}, d, H * W])
    v = qkv.select(1, 2).reshape([B * {0}, d, H * W]).transpose(1, 2)
    a = torch.softmax(torch.bmm(q, k) / {2}, -1)
    return x + torch.conv2d(torch.bmm(a, v).transpose(1, 2).reshape([B, C, H, W]), pw, pb)
)", o.heads, o.groups, num(std::sqrt(double(o.widths.back() / o.heads))));
  if (o.temporal_heads > 0) {
    src += fmt::format(R"(
def _temporal(self, x: Tensor, nw: Tensor, nb: Tensor, qw: Tensor, qb: Tensor, pw: Tensor, pb: Tensor) -> Tensor:
    K = {0}
    C, H, W = x.size(1), x.size(2), x.size(3)
    B = x.size(0) // K
    d = C // {1}
    h = torch.group_norm(x, {2}, nw, nb, 1e-5).reshape([B, K, C, H * W]).permute([0, 3, 1, 2])
    half = C // 2
    freqs = torch.exp({3} * torch.arange(half, device=x.device).float() / half)
    frame = torch.arange(K, device=x.device).float() / 1000.0
    args = (frame * 1000.0).unsqueeze(1) * freqs.unsqueeze(0)
    h = h + torch.cat([args.sin(), args.cos()], 1)
    qkv = torch.linear(h, qw, qb).reshape([B * H * W, K, 3, {1}, d]).permute([2, 0, 3, 1, 4])
    q = qkv[0].reshape([-1, K, d])
    k = qkv[1].reshape([-1, K, d])
    v = qkv[2].reshape([-1, K, d])
    a = torch.softmax(torch.bmm(q, k.transpose(1, 2)) / (d ** 0.5), -1)
    out = torch.bmm(a, v).reshape([B * H * W, {1}, K, d]).permute([0, 2, 1, 3]).reshape([B, H * W, K, C])
    out = torch.linear(out, pw, pb).permute([0, 2, 3, 1]).reshape([B * K, C, H, W])
    return x + out
)", o.frames, o.temporal_heads, o.groups, num(-std::log(10000.0)));
  }
  return src;
}

// A temporal block's call on h, reading the parameters under `prefix`.
std::string temporal_call(const std::string& prefix) {
  auto p = [&](const std::string& n) { return attr(prefix + "." + n); };
  return fmt::format("    h = self._temporal(h, {}, {}, {}, {}, {}, {})\n", p("norm.weight"), p("norm.bias"),
                     p("qkv.weight"), p("qkv.bias"), p("proj.weight"), p("proj.bias"));
}

// A residual block's call on `in`, reading the parameters under `prefix`.
std::string res_call(const std::string& in, const std::string& prefix, bool skip) {
  auto p = [&](const std::string& n) { return attr(prefix + "." + n); };
  std::string s = fmt::format("self.{}({}, emb, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}", skip ? "_res_skip" : "_res", in,
                              p("norm1.weight"), p("norm1.bias"), p("conv1.weight"), p("conv1.bias"),
                              p("emb_proj.weight"), p("emb_proj.bias"), p("norm2.weight"), p("norm2.bias"),
                              p("conv2.weight"), p("conv2.bias"));
  if (skip) s += fmt::format(", {}, {}", p("skip.weight"), p("skip.bias"));
  return s + ")";
}

// forward and features, unrolled for this UNet's levels and blocks (UNetImpl::down / forward).
std::string unet_methods(const UNetOptions& o, const std::map<std::string, torch::Tensor>& params) {
  auto has = [&](const std::string& n) { return params.count(n) > 0; };
  const int64_t L = o.widths.size();
  const bool video = o.frames > 0;
  // The input: the condition channels appended (cond is them when concat_channels > 0), a video's
  // frames folded into the batch with one embedding per clip repeated for its frames.
  std::string down = fmt::format("    emb = self._embed(t, {})\n", o.concat_channels > 0 ? "t" : "cond");
  std::string input = "x";
  if (o.concat_channels > 0) input = fmt::format("torch.cat([x, cond.to(x.dtype)], {})", video ? 2 : 1);
  if (video) {
    input += ".flatten(0, 1)";
    down += fmt::format("    emb = emb.repeat_interleave({}, 0)\n", o.frames);
  }
  down += fmt::format("    h = torch.conv2d({}, {}, {}, [1, 1], [1, 1])\n", input, attr("in_conv.weight"),
                      attr("in_conv.bias"));
  // A video's [B*K, ...] back to [B, K, ...].
  auto unfold = [&](const std::string& e) {
    return video ? fmt::format("{0}.reshape([-1, {1}, {0}.size(1), {0}.size(2), {0}.size(3)])", e, o.frames) : e;
  };
  int64_t down_t = 0, up_t = 0;  // temporal blocks so far (UNetImpl's add_temporal order)
  auto has_temporal = [&](int64_t l) { return o.temporal_heads > 0 && l >= o.temporal_from; };
  std::vector<std::string> skips{"s0"};
  down += "    s0 = h\n";
  std::vector<std::string> levels;
  int64_t i = 0;
  for (int64_t l = 0; l < L; ++l) {
    for (int64_t b = 0; b < o.blocks; ++b, ++i) {
      const auto pre = fmt::format("down_blocks.{}", i);
      down += fmt::format("    h = {}\n", res_call("h", pre, has(pre + ".skip.weight")));
      if (has_temporal(l)) down += temporal_call(fmt::format("down_temporal.{}", down_t++));
      skips.push_back(fmt::format("s{}", skips.size()));
      down += fmt::format("    {} = h\n", skips.back());
    }
    levels.push_back(skips.back());
    if (l + 1 < L) {
      down += fmt::format("    h = torch.conv2d(h, {}, {}, [2, 2], [1, 1])\n", attr(fmt::format("downsamples.{}.weight", l)),
                          attr(fmt::format("downsamples.{}.bias", l)));
      skips.push_back(fmt::format("s{}", skips.size()));
      down += fmt::format("    {} = h\n", skips.back());
    }
  }
  down += fmt::format("    h = {}\n", res_call("h", "mid1", false));
  if (o.heads > 0)
    down += fmt::format("    h = self._attn(h, {}, {}, {}, {}, {}, {})\n", attr("mid_attn.norm.weight"),
                        attr("mid_attn.norm.bias"), attr("mid_attn.qkv.weight"), attr("mid_attn.qkv.bias"),
                        attr("mid_attn.proj.weight"), attr("mid_attn.proj.bias"));
  if (o.temporal_heads > 0) down += temporal_call("mid_temporal");
  down += fmt::format("    h = {}\n", res_call("h", "mid2", false));

  const std::string sig = "(self, x: Tensor, t: Tensor, cond: Tensor)";
  std::string features = "\ndef features" + sig + " -> List[Tensor]:\n" + down;
  std::vector<std::string> unfolded;
  for (const auto& l : levels) unfolded.push_back(unfold(l));
  features += fmt::format("    return [{}, {}]\n", fmt::join(unfolded, ", "), unfold("h"));

  std::string forward = "\ndef forward" + sig + " -> Tensor:\n" + down;
  i = 0;
  for (int64_t l = L - 1; l >= 0; --l) {
    for (int64_t b = 0; b <= o.blocks; ++b, ++i) {
      const auto pre = fmt::format("up_blocks.{}", i);
      forward += fmt::format("    h = {}\n", res_call("torch.cat([h, " + skips.back() + "], 1)", pre, has(pre + ".skip.weight")));
      if (has_temporal(l)) forward += temporal_call(fmt::format("up_temporal.{}", up_t++));
      skips.pop_back();
    }
    if (l > 0) {
      const auto& next = skips.back();
      forward += fmt::format("    h = torch.upsample_nearest2d(h, [{0}.size(2), {0}.size(3)])\n", next);
      forward += fmt::format("    h = torch.conv2d(h, {}, {}, [1, 1], [1, 1])\n",
                             attr(fmt::format("upsamples.{}.weight", L - 1 - l)),
                             attr(fmt::format("upsamples.{}.bias", L - 1 - l)));
    }
  }
  forward += fmt::format("    h = torch.conv2d(torch.silu(torch.group_norm(h, {}, {}, {}, 1e-5)), {}, {}, [1, 1], [1, 1])\n",
                         o.groups, attr("out_norm.weight"), attr("out_norm.bias"), attr("out_conv.weight"),
                         attr("out_conv.bias"));
  forward += fmt::format("    return {}\n", unfold("h"));
  return features + forward;
}

}  // namespace

torch::jit::Module unet_to_torchscript(UNetDenoiserImpl& model, ScriptContract* contract) {
  const auto& o = model.net->options();
  if (o.concat_channels > 0 && o.num_classes > 0)
    throw ConfigError("export: a model conditioned on both classes and render channels has no TorchScript contract "
                      "(cond is one or the other)");
  std::map<std::string, torch::Tensor> params;
  for (const auto& p : model.net->named_parameters(true)) {
    if (p.key().find("_lora.") != std::string::npos)
      throw ConfigError("export: a UNet with LoRA adapters (a fake score) is not exported; export the teacher or student");
    params[p.key()] = p.value();
  }
  torch::jit::Module m("RetortUNet");
  for (const auto& [name, t] : params) m.register_parameter(attr(name).substr(5), t.detach().clone(), false);
  m.define(unet_helpers(o) + unet_methods(o, params));
  if (contract) {
    ScriptContract& c = *contract;
    c = ScriptContract{};
    c.prediction = model.prediction;
    c.time = "continuous";
    c.schedule = model.schedule.options();
    c.channels = o.channels;
    c.resolution = o.resolution;
    c.num_classes = o.num_classes;
    c.null_class = o.num_classes;
    c.frames = o.frames;
    c.concat_channels = o.concat_channels;
    c.features = "features";
  }
  return m;
}

void define_student_sample(torch::jit::Module& module, const ScriptContract& c, const std::vector<int64_t>& timesteps) {
  const Schedule schedule(c.schedule);
  const int64_t T = c.schedule.steps;
  std::string src = R"(
def sample(self, noise: Tensor, cond: Tensor, renoise: Optional[Tensor] = None) -> Tensor:
    x = noise
    x0 = noise
    B = noise.size(0)
)";
  const size_t K = timesteps.size();
  auto abar = [&](int64_t k) {
    return schedule.alpha_bar(torch::full({1}, schedule.time_of_step(k), torch::kFloat32)).item<double>();
  };
  for (size_t i = 0; i < K; ++i) {
    const int64_t k = timesteps[i];
    if (k < 0 || k >= T) throw ConfigError(fmt::format("export: timestep {} outside the schedule's 0..{}", k, T - 1));
    const double ab = abar(k), a = std::sqrt(ab), s = std::sqrt(std::max(0.0, 1 - ab));
    if (c.time == "discrete")
      src += fmt::format("    t = torch.full([B], {}, device=x.device).long()\n", k);
    else
      src += fmt::format("    t = torch.full([B], {}, device=x.device).float()\n", num(schedule.time_of_step(k)));
    src += fmt::format("    out = self.{}(x, t, cond)\n", c.method);
    switch (c.prediction) {
      case Prediction::X0: src += "    x0 = out\n"; break;
      case Prediction::V: src += fmt::format("    x0 = {} * x - {} * out\n", num(a), num(s)); break;
      default: src += fmt::format("    x0 = (x - {} * out) / {}\n", num(s), num(a)); break;
    }
    if (i + 1 < K) {
      const double nb = abar(timesteps[i + 1]);
      src += fmt::format("    e = torch.randn_like(x0) if renoise is None else renoise[{}]\n", i);
      src += fmt::format("    x = {} * x0 + {} * e\n", num(std::sqrt(nb)), num(std::sqrt(std::max(0.0, 1 - nb))));
    }
  }
  src += "    return x0.clamp(-1.0, 1.0)\n";
  module.define(src);
}

}  // namespace retort
