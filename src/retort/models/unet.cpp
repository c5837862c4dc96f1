#include "retort/models/unet.h"

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join ({fmt} 11 moved it here)

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "retort/core/error.h"
#include "retort/io/safetensors.h"
#include "retort/models/mlp.h"
#include "retort/models/small_attention.h"
#include "retort/models/winograd_conv.h"

namespace retort {
namespace F = torch::nn::functional;
namespace nn = torch::nn;

namespace {

nn::Conv2d conv3(int64_t in, int64_t out, int64_t stride = 1) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1));
}

void zero_(nn::Conv2d& c) {
  torch::NoGradGuard ng;
  c->weight.zero_();
  if (c->bias.defined()) c->bias.zero_();
}

}  // namespace

std::vector<std::string> lora_layer_names() { return {"attention", "resblocks"}; }

const OptionTable<UNetLora>& unet_lora_option_table() {
  static const auto table = [] {
    OptionTable<UNetLora> t;
    t.integer("lora_rank", &UNetLora::rank, 1, 1024, "fake = \"lora\": the adapters' rank r")
        .number("lora_alpha", &UNetLora::alpha, 1e-6, 1e6, "fake = \"lora\": the branch's scale is alpha / r")
        .strings("lora_layers", &UNetLora::layers, lora_layer_names(),
                 "fake = \"lora\": the layers given adapters: attention (qkv and output projections), resblocks "
                 "(each residual block's two 3x3 convolutions)");
    return t;
  }();
  return table;
}

LoraConvImpl::LoraConvImpl(const nn::detail::ConvNdOptions<2>& base, int64_t rank, double alpha) : scale_(alpha / double(rank)) {
  if (rank < 1) throw ConfigError(fmt::format("lora_rank = {} must be at least 1", rank));
  a = register_module("a", nn::Conv2d(nn::Conv2dOptions(base.in_channels(), rank, base.kernel_size())
                                          .stride(base.stride())
                                          .padding(base.padding())
                                          .bias(false)));
  b = register_module("b", nn::Conv2d(nn::Conv2dOptions(rank, base.out_channels(), 1).bias(false)));
  torch::NoGradGuard ng;
  b->weight.zero_();
}

torch::Tensor LoraConvImpl::forward(const torch::Tensor& x) { return scale_ * b->forward(a->forward(x)); }

ResBlockImpl::ResBlockImpl(int64_t in, int64_t out, int64_t emb_dim, int64_t groups, double dropout) {
  norm1 = register_module("norm1", nn::GroupNorm(groups, in));
  conv1 = register_module("conv1", conv3(in, out));
  emb_proj = register_module("emb_proj", nn::Linear(emb_dim, out));
  norm2 = register_module("norm2", nn::GroupNorm(groups, out));
  drop = register_module("drop", nn::Dropout(dropout));
  conv2 = register_module("conv2", conv3(out, out));
  zero_(conv2);  // each block starts as the identity, which keeps deep stacks stable at init
  if (in != out) skip = register_module("skip", nn::Conv2d(nn::Conv2dOptions(in, out, 1)));
}

torch::Tensor ResBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& emb) {
  auto a = F::silu(norm1->forward(x));
  auto h = conv3x3(*conv1, a);
  if (conv1_lora) h = h + conv1_lora->forward(a);
  h = h + emb_proj->forward(F::silu(emb)).unsqueeze(-1).unsqueeze(-1);
  a = drop->forward(F::silu(norm2->forward(h)));
  h = conv3x3(*conv2, a);
  if (conv2_lora) h = h + conv2_lora->forward(a);
  return (skip ? skip->forward(x) : x) + h;
}

void ResBlockImpl::enable_lora(int64_t rank, double alpha) {
  conv1_lora = register_module("conv1_lora", LoraConv(conv1->options, rank, alpha));
  conv2_lora = register_module("conv2_lora", LoraConv(conv2->options, rank, alpha));
}

AttentionBlockImpl::AttentionBlockImpl(int64_t channels, int64_t heads, int64_t groups) : heads_(heads) {
  if (channels % heads != 0)
    throw ConfigError(fmt::format("unet: heads = {} must divide the lowest width {}", heads, channels));
  norm = register_module("norm", nn::GroupNorm(groups, channels));
  qkv = register_module("qkv", nn::Conv2d(nn::Conv2dOptions(channels, 3 * channels, 1)));
  proj = register_module("proj", nn::Conv2d(nn::Conv2dOptions(channels, channels, 1)));
  zero_(proj);
}

torch::Tensor AttentionBlockImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), d = C / heads_;
  // [B, 3, heads, d, HW] -> q, k, v as [B*heads, HW, d]
  auto n = norm->forward(x);
  auto qkv_ = qkv->forward(n);
  if (qkv_lora) qkv_ = qkv_ + qkv_lora->forward(n);
  qkv_ = qkv_.reshape({B, 3, heads_, d, H * W});
  auto q = qkv_.select(1, 0).reshape({B * heads_, d, H * W}).transpose(1, 2);
  auto k = qkv_.select(1, 1).reshape({B * heads_, d, H * W});
  auto v = qkv_.select(1, 2).reshape({B * heads_, d, H * W}).transpose(1, 2);
  auto attn = torch::softmax(torch::bmm(q, k) / std::sqrt(double(d)), -1);
  auto out = torch::bmm(attn, v).transpose(1, 2).reshape({B, C, H, W});
  auto y = proj->forward(out);
  if (proj_lora) y = y + proj_lora->forward(out);
  return x + y;
}

void AttentionBlockImpl::enable_lora(int64_t rank, double alpha) {
  qkv_lora = register_module("qkv_lora", LoraConv(qkv->options, rank, alpha));
  proj_lora = register_module("proj_lora", LoraConv(proj->options, rank, alpha));
}

TemporalAttentionImpl::TemporalAttentionImpl(int64_t channels, int64_t heads, int64_t groups, int64_t frames)
    : heads_(heads), frames_(frames) {
  if (channels % heads != 0 || channels % 2 != 0)
    throw ConfigError(fmt::format("unet: temporal_heads = {} must divide width {} (and widths with temporal "
                                  "attention must be even)", heads, channels));
  norm = register_module("norm", nn::GroupNorm(groups, channels));
  qkv = register_module("qkv", nn::Linear(channels, 3 * channels));
  proj = register_module("proj", nn::Linear(channels, channels));
  torch::NoGradGuard ng;
  proj->weight.zero_();
  proj->bias.zero_();
}

torch::Tensor TemporalAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t K = frames_, B = x.size(0) / K, C = x.size(1), H = x.size(2), W = x.size(3), d = C / heads_;
  // [B*K, C, H, W] -> one sequence of K frames per pixel: [B, HW, K, C]
  auto h = norm->forward(x).reshape({B, K, C, H * W}).permute({0, 3, 1, 2});
  auto frame = torch::arange(K, x.options().dtype(torch::kFloat32)) / 1000.0;  // time_features scales by 1000
  h = h + time_features(frame, C).to(x.scalar_type());
  auto qkv_ = qkv->forward(h).reshape({B * H * W, K, 3, heads_, d}).permute({2, 0, 3, 1, 4});
  auto q = qkv_[0].reshape({-1, K, d}), k = qkv_[1].reshape({-1, K, d}), v = qkv_[2].reshape({-1, K, d});
  auto out = small_attention(q, k, v).reshape({B * H * W, heads_, K, d}).permute({0, 2, 1, 3}).reshape({B, H * W, K, C});
  out = proj->forward(out).permute({0, 2, 3, 1}).reshape({B * K, C, H, W});
  return x + out;
}

UNetImpl::UNetImpl(const UNetOptions& o) : opts_(o) {
  if (o.widths.empty()) throw ConfigError("unet.widths must name at least one level");
  for (auto w : o.widths)
    if (w % o.groups != 0)
      throw ConfigError(fmt::format("unet: groups = {} must divide every width (got {})", o.groups, w));
  const int64_t L = o.widths.size();
  if (o.frames < 0 || o.concat_channels < 0 || o.temporal_heads < 0)
    throw ConfigError("unet: frames, concat_channels and temporal_heads must be >= 0");
  if (o.temporal_heads > 0 && o.frames == 0)
    throw ConfigError("unet: temporal_heads > 0 needs a video model (frames > 0)");
  if (o.temporal_from < 0 || o.temporal_from > L)
    throw ConfigError(fmt::format("unet: temporal_from = {} must be in [0, {}] (the number of levels)", o.temporal_from, L));
  const int64_t E = o.time_dim;
  time_mlp = register_module("time_mlp", nn::Sequential(nn::Linear(E, E), nn::SiLU(), nn::Linear(E, E)));
  // Index num_classes is the null class of classifier-free guidance.
  if (o.num_classes > 0) class_embed = register_module("class_embed", nn::Embedding(o.num_classes + 1, E));
  if (o.camera_dim > 0) {
    camera_proj = register_module("camera_proj", nn::Linear(o.camera_dim, E));
    torch::NoGradGuard ng;
    camera_proj->weight.zero_();
    camera_proj->bias.zero_();
  }
  in_conv = register_module("in_conv", conv3(o.channels + o.concat_channels, o.widths[0]));
  if (o.temporal_heads > 0) {  // image models keep their module tree (and checkpoints) as before
    down_temporal = register_module("down_temporal", nn::ModuleList());
    up_temporal = register_module("up_temporal", nn::ModuleList());
  }
  // A temporal block after residual block i at level l, when level l has temporal attention.
  auto add_temporal = [&](nn::ModuleList& list, std::vector<int64_t>& index, int64_t l, int64_t width) {
    if (o.temporal_heads > 0 && l >= o.temporal_from) {
      index.push_back(int64_t(list->size()));
      list->push_back(TemporalAttention(width, o.temporal_heads, o.groups, o.frames));
    } else {
      index.push_back(-1);
    }
  };
  std::vector<int64_t> skip_ch{o.widths[0]};
  int64_t ch = o.widths[0];
  down_blocks = register_module("down_blocks", nn::ModuleList());
  downsamples = register_module("downsamples", nn::ModuleList());
  for (int64_t l = 0; l < L; ++l) {
    for (int64_t b = 0; b < o.blocks; ++b) {
      down_blocks->push_back(ResBlock(ch, o.widths[l], E, o.groups, o.dropout));
      add_temporal(down_temporal, down_temporal_index, l, o.widths[l]);
      ch = o.widths[l];
      skip_ch.push_back(ch);
    }
    if (l + 1 < L) {
      downsamples->push_back(conv3(ch, ch, 2));
      skip_ch.push_back(ch);
    }
  }
  mid1 = register_module("mid1", ResBlock(ch, ch, E, o.groups, o.dropout));
  if (o.heads > 0) mid_attn = register_module("mid_attn", AttentionBlock(ch, o.heads, o.groups));
  if (o.temporal_heads > 0)
    mid_temporal = register_module("mid_temporal", TemporalAttention(ch, o.temporal_heads, o.groups, o.frames));
  mid2 = register_module("mid2", ResBlock(ch, ch, E, o.groups, o.dropout));
  up_blocks = register_module("up_blocks", nn::ModuleList());
  upsamples = register_module("upsamples", nn::ModuleList());
  for (int64_t l = L - 1; l >= 0; --l) {
    for (int64_t b = 0; b <= o.blocks; ++b) {
      int64_t s = skip_ch.back();
      skip_ch.pop_back();
      up_blocks->push_back(ResBlock(ch + s, o.widths[l], E, o.groups, o.dropout));
      add_temporal(up_temporal, up_temporal_index, l, o.widths[l]);
      ch = o.widths[l];
    }
    if (l > 0) upsamples->push_back(conv3(ch, ch));
  }
  out_norm = register_module("out_norm", nn::GroupNorm(o.groups, ch));
  out_conv = register_module("out_conv", conv3(ch, o.channels));
  zero_(out_conv);
}

torch::Tensor UNetImpl::condition_embedding(const Cond& cond, int64_t batch) {
  if (!class_embed) throw Error("this UNet is unconditional; it has no condition embedding");
  if (cond.embedding.defined()) return cond.embedding;
  auto device = class_embed->weight.device();
  torch::Tensor idx = cond.labels.defined() ? cond.labels.to(device)
                                            : torch::full({batch}, kNullClass, torch::dtype(torch::kInt64).device(device));
  idx = torch::where(idx == kNullClass, torch::full_like(idx, opts_.num_classes), idx);
  return class_embed->forward(idx);
}

torch::Tensor UNetImpl::embed(const torch::Tensor& t, const Cond& cond, int64_t batch) {
  auto emb = time_mlp->forward(time_features(t, opts_.time_dim));
  if (class_embed) emb = emb + condition_embedding(cond, batch);
  if (camera_proj && cond.camera.defined()) emb = emb + camera_proj->forward(cond.camera.to(emb.options()));
  return emb;
}

torch::Tensor UNetImpl::input(const torch::Tensor& x, const Cond& cond) {
  const int64_t K = opts_.frames, C = opts_.channels, Cc = opts_.concat_channels;
  const bool video = K > 0;
  if (video ? (x.dim() != 5 || x.size(1) != K || x.size(2) != C) : (x.dim() != 4 || x.size(1) != C))
    throw Error(fmt::format("unet: expected {} [B,{}{},H,W], got [{}]", video ? "videos" : "images",
                            video ? fmt::format("{},", K) : "", C, fmt::join(x.sizes(), ",")));
  auto h = x;
  const int64_t channel_dim = video ? 2 : 1;
  if (Cc > 0) {
    if (!cond.concat.defined())
      throw Error(fmt::format("unet: this model reads {} condition channels (Cond::concat); none given", Cc));
    auto want = x.sizes().vec();
    want[channel_dim] = Cc;
    if (cond.concat.sizes().vec() != want)
      throw Error(fmt::format("unet: Cond::concat must be [{}], got [{}]", fmt::join(want, ","),
                              fmt::join(cond.concat.sizes(), ",")));
    h = torch::cat({x, cond.concat.to(x.options())}, channel_dim);
  } else if (cond.concat.defined()) {
    throw Error("unet: Cond::concat given to a model without condition channels (concat_channels = 0)");
  }
  return video ? h.flatten(0, 1) : h;
}

torch::Tensor UNetImpl::temporal(const std::vector<int64_t>& index, nn::ModuleList& blocks, int64_t i,
                                 const torch::Tensor& h) {
  if (index.empty() || index[i] < 0) return h;
  return blocks[index[i]]->as<TemporalAttentionImpl>()->forward(h);
}

torch::Tensor UNetImpl::down(const torch::Tensor& x, const torch::Tensor& emb, std::vector<torch::Tensor>* skips) {
  auto h = conv3x3(*in_conv, x);
  if (skips) skips->push_back(h);
  const int64_t L = opts_.widths.size();
  int64_t i = 0;
  for (int64_t l = 0; l < L; ++l) {
    for (int64_t b = 0; b < opts_.blocks; ++b) {
      h = down_blocks[i]->as<ResBlockImpl>()->forward(h, emb);
      h = temporal(down_temporal_index, down_temporal, i++, h);
      if (skips) skips->push_back(h);
    }
    if (l + 1 < L) {
      h = downsamples[l]->as<nn::Conv2dImpl>()->forward(h);
      if (skips) skips->push_back(h);
    }
  }
  h = mid1->forward(h, emb);
  if (mid_attn) h = mid_attn->forward(h);
  if (mid_temporal) h = mid_temporal->forward(h);
  return mid2->forward(h, emb);
}

namespace {
// [B*K, ...] back to [B, K, ...] for a video model.
torch::Tensor unfold_frames(const torch::Tensor& h, int64_t frames) {
  if (frames == 0) return h;
  auto shape = h.sizes().vec();
  shape[0] /= frames;
  shape.insert(shape.begin() + 1, frames);
  return h.reshape(shape);
}
}  // namespace

torch::Tensor UNetImpl::encode(const torch::Tensor& x, const torch::Tensor& t, const Cond& cond) {
  auto emb = embed(t, cond, x.size(0));
  if (opts_.frames > 0) emb = emb.repeat_interleave(opts_.frames, 0);
  return unfold_frames(down(input(x, cond), emb, nullptr), opts_.frames);
}

std::vector<torch::Tensor> UNetImpl::encode_levels(const torch::Tensor& x, const torch::Tensor& t, const Cond& cond) {
  auto emb = embed(t, cond, x.size(0));
  if (opts_.frames > 0) emb = emb.repeat_interleave(opts_.frames, 0);
  std::vector<torch::Tensor> skips;
  auto h = down(input(x, cond), emb, &skips);
  // skips: the input conv, then per level its `blocks` outputs and (but the last) its downsample.
  std::vector<torch::Tensor> levels;
  for (size_t l = 0; l < opts_.widths.size(); ++l)
    levels.push_back(unfold_frames(skips[l * (opts_.blocks + 1) + opts_.blocks], opts_.frames));
  levels.push_back(unfold_frames(h, opts_.frames));
  return levels;
}

torch::Tensor UNetImpl::forward(const torch::Tensor& x, const torch::Tensor& t, const Cond& cond) {
  auto emb = embed(t, cond, x.size(0));
  if (opts_.frames > 0) emb = emb.repeat_interleave(opts_.frames, 0);  // one embedding per clip, shared by its frames
  std::vector<torch::Tensor> skips;
  auto h = down(input(x, cond), emb, &skips);
  const int64_t L = opts_.widths.size();
  int64_t i = 0;
  for (int64_t l = L - 1; l >= 0; --l) {
    for (int64_t b = 0; b <= opts_.blocks; ++b) {
      h = up_blocks[i]->as<ResBlockImpl>()->forward(torch::cat({h, skips.back()}, 1), emb);
      h = temporal(up_temporal_index, up_temporal, i++, h);
      skips.pop_back();
    }
    if (l > 0) {
      // Upsample to the size of the skip it meets next (odd sizes such as 7 -> 14 -> 28 work).
      const auto& next = skips.back();
      h = F::interpolate(h, F::InterpolateFuncOptions()
                                .size(std::vector<int64_t>{next.size(2), next.size(3)})
                                .mode(torch::kNearest));
      h = conv3x3(*upsamples[L - 1 - l]->as<nn::Conv2dImpl>(), h);
    }
  }
  return unfold_frames(conv3x3(*out_conv, F::silu(out_norm->forward(h))), opts_.frames);
}

UNetDenoiserImpl::UNetDenoiserImpl(const UNetOptions& opts, Schedule schedule_, Prediction prediction_)
    : DiffusionModel(std::move(schedule_), prediction_) {
  net = register_module("net", UNet(opts));
}

torch::Tensor UNetDenoiserImpl::predict(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) {
  return net->forward(xt, t, cond);
}

ModelShape UNetDenoiserImpl::shape() const {
  const auto& o = net->options();
  return {o.channels, o.resolution, o.frames, o.num_classes, o.concat_channels, o.camera_dim};
}

DiffusionModelPtr UNetDenoiserImpl::copy() {
  auto m = std::make_shared<UNetDenoiserImpl>(net->options(), schedule, prediction);
  copy_weights(*this, *m);
  m->to(device());
  return m;
}

std::vector<torch::Tensor> UNetDenoiserImpl::encode_levels(const torch::Tensor& xt, const torch::Tensor& t,
                                                           const Cond& cond) {
  return net->encode_levels(xt, t, cond);
}

torch::Tensor UNetDenoiserImpl::encode(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) {
  return net->encode(xt, t, cond);
}

torch::Tensor UNetDenoiserImpl::condition_embedding(const Cond& cond, int64_t batch) {
  return net->condition_embedding(cond, batch);
}

void copy_weights(torch::nn::Module& from, torch::nn::Module& to, const std::vector<std::string>& keep_own) {
  torch::NoGradGuard ng;
  auto src = from.named_parameters(true);
  auto src_b = from.named_buffers(true);
  auto own = [&](const std::string& name) {
    for (const auto& k : keep_own)
      if (name.rfind(k, 0) == 0) return true;
    return false;
  };
  for (auto& p : to.named_parameters(true)) {
    auto* s = src.find(p.key());
    if (!s && own(p.key())) continue;
    if (!s || !s->sizes().equals(p.value().sizes()))
      throw Error(fmt::format("copy_weights: no parameter '{}' of matching shape in the source", p.key()));
    p.value().copy_(*s);
  }
  for (auto& b : to.named_buffers(true)) {
    auto* s = src_b.find(b.key());
    if (!s) throw Error(fmt::format("copy_weights: no buffer '{}' in the source", b.key()));
    b.value().copy_(*s);
  }
}

void UNetImpl::enable_lora(const UNetLora& lora) {
  auto wants = [&](const char* layer) { return std::find(lora.layers.begin(), lora.layers.end(), layer) != lora.layers.end(); };
  for (const auto& l : lora.layers)
    if (l != "attention" && l != "resblocks")
      throw ConfigError(fmt::format("lora_layers: unknown layer kind '{}'; known: attention, resblocks", l));
  if (wants("resblocks")) {
    for (auto* list : {&down_blocks, &up_blocks})
      for (const auto& m : **list) m->as<ResBlockImpl>()->enable_lora(lora.rank, lora.alpha);
    mid1->enable_lora(lora.rank, lora.alpha);
    mid2->enable_lora(lora.rank, lora.alpha);
  }
  if (wants("attention") && mid_attn) mid_attn->enable_lora(lora.rank, lora.alpha);
}

UNetDenoiser lora_copy(UNetDenoiserImpl& teacher, const UNetLora& lora, int64_t camera_dim) {
  UNetOptions o = teacher.net->options();
  o.camera_dim = camera_dim;
  UNetDenoiser copy(o, teacher.schedule, teacher.prediction);
  copy_weights(teacher, *copy, {"net.camera_proj."});
  freeze(*copy);
  copy->net->enable_lora(lora);  // adapters are made trainable
  if (camera_dim > 0)
    for (auto& p : copy->net->named_parameters())
      if (p.key().rfind("camera_proj.", 0) == 0) p.value().set_requires_grad(true);
  copy->to(teacher.device());
  return copy;
}

UNetDenoiser camera_conditioned_copy(UNetDenoiserImpl& teacher, int64_t camera_dim) {
  if (camera_dim < 1) throw Error("camera_conditioned_copy: camera_dim must be >= 1");
  UNetOptions o = teacher.net->options();
  o.camera_dim = camera_dim;
  UNetDenoiser copy(o, teacher.schedule, teacher.prediction);
  copy_weights(teacher, *copy, {"net.camera_proj."});
  copy->to(teacher.parameters().front().device());
  return copy;
}

const OptionTable<UNetOptions>& unet_option_table() {
  static const auto table = [] {
    using U = UNetOptions;
    OptionTable<U> t;
    t.integer("channels", &U::channels, 1, 64, "image channels (set from the data set)")
        .integer("resolution", &U::resolution, 4, 4096, "input height = width (set from the data set)")
        .integers("widths", &U::widths, 1, 65536, "channels per level; level i works at resolution / 2^i")
        .integer("blocks", &U::blocks, 1, 16, "residual blocks per level (encoder; the decoder has one more)")
        .integer("time_dim", &U::time_dim, 8, 4096, "width of the time / class embedding (even)")
        .integer("num_classes", &U::num_classes, 0, 1 << 20, "classes (set from the data set); 0: unconditional")
        .integer("groups", &U::groups, 1, 256, "GroupNorm groups (must divide every width)")
        .integer("heads", &U::heads, 0, 64, "attention heads at the lowest resolution (0: no attention)")
        .number("dropout", &U::dropout, 0.0, 0.9, "dropout in the residual blocks")
        .integer("camera_dim", &U::camera_dim, 0, 4096,
                 "> 0: a camera vector added to the embedding (ASD's camera-aware fake score)")
        .integer("concat_channels", &U::concat_channels, 0, 4096,
                 "condition channels appended to the input (set from the data: point-cloud renders)")
        .integer("frames", &U::frames, 0, 4096, "> 0: a video model over clips of this many frames (set from the data)")
        .integer("temporal_heads", &U::temporal_heads, 0, 64, "temporal self-attention heads across frames (0 = none)")
        .integer("temporal_from", &U::temporal_from, 0, 16,
                 "first level with temporal attention (0 = full resolution; the middle always has it)")
        .check([](ConfigNode& n, const U& o) {
          if (o.widths.empty()) n.fail("widths", "needs at least one level");
          if (o.time_dim % 2) n.fail("time_dim", "must be even (sin and cos halves)");
          for (auto w : o.widths)
            if (w % o.groups) n.fail("groups", fmt::format("{} does not divide width {}", o.groups, w));
          if (o.heads > 0 && o.widths.back() % o.heads)
            n.fail("heads", fmt::format("{} does not divide the lowest width {}", o.heads, o.widths.back()));
          if (o.temporal_heads > 0) {
            if (o.temporal_from > int64_t(o.widths.size()))
              n.fail("temporal_from", fmt::format("{} is beyond the {} levels", o.temporal_from, o.widths.size()));
            for (size_t l = std::min<size_t>(o.temporal_from, o.widths.size()); l < o.widths.size(); ++l)
              if (o.widths[l] % o.temporal_heads || o.widths[l] % 2)
                n.fail("temporal_heads",
                       fmt::format("{} does not divide width {} (or it is odd)", o.temporal_heads, o.widths[l]));
          }
        });
    return t;
  }();
  return table;
}

namespace {

const char* kMetaKey = "retort.unet";

// What a saved UNet's metadata describes: the network, its prediction and its schedule.
struct UNetMeta {
  UNetOptions net;
  Prediction prediction = Prediction::Eps;
  ScheduleOptions schedule;
};

const OptionTable<UNetMeta>& unet_meta_table() {
  static const auto table = [] {
    using M = UNetMeta;
    OptionTable<M> t;
    t.include(unet_option_table(), &M::net)
        .named("prediction", &M::prediction, {"eps", "x0", "v"}, "what the network predicts")
        .named("schedule", [](M& m) -> ScheduleKind& { return m.schedule.kind; }, schedule_kind_names(), "schedule")
        .integer("schedule_steps", [](M& m) -> int64_t& { return m.schedule.steps; }, 2, 100000, "schedule T")
        .flag("schedule_continuous", [](M& m) -> bool& { return m.schedule.continuous; }, "continuous schedule");
    return t;
  }();
  return table;
}

}  // namespace

void UNetDenoiserImpl::save(const std::filesystem::path& path, const std::map<std::string, std::string>& extra) {
  auto meta = extra;
  meta[kMetaKey] = unet_meta_table().to_json({net->options(), prediction, schedule.options()}).dump();
  save_module(path, *this, meta);
}

void save_unet(const std::filesystem::path& path, UNetDenoiser& model, const std::map<std::string, std::string>& extra) {
  model->save(path, extra);
}

UNetDenoiser load_unet(const std::filesystem::path& path, std::map<std::string, std::string>* metadata) {
  std::map<std::string, std::string> meta;
  const auto tensors = load_safetensors(path, &meta);  // validates the file before we trust its metadata
  auto it = meta.find(kMetaKey);
  if (it == meta.end())
    throw IoError(fmt::format("{}: not a retort UNet (no '{}' metadata)", path.string(), kMetaKey));
  UNetMeta m;
  try {
    auto j = nlohmann::json::parse(it->second);
    // Every key but camera_dim and the video keys (absent in files from before them) is required.
    unet_meta_table().require_keys(j, {"camera_dim", "concat_channels", "frames", "temporal_heads", "temporal_from"});
    unet_meta_table().from_json(j, m);
  } catch (const std::exception& e) {
    throw IoError(fmt::format("{}: bad '{}' metadata: {}", path.string(), kMetaKey, e.what()));
  }
  const auto& o = m.net;
  const auto& s = m.schedule;
  const auto pred = m.prediction;
  // The network is built before its tensors are read: a description of one far larger than the
  // file (fuzz/model_metadata.cpp) must not make retort allocate it. A lower bound on its
  // parameters, from tensors every such UNet has: the time MLP, the class embedding, and the second
  // 3x3 convolution of each residual block.
  double at_least = 2.0 * o.time_dim * o.time_dim + double(o.num_classes + 1) * o.time_dim;
  for (auto w : o.widths) at_least += double(o.blocks) * 9.0 * double(w) * double(w);
  double held = 0;
  for (const auto& [name, t] : tensors) held += double(t.numel());
  if (at_least > held)
    throw IoError(fmt::format("{}: its '{}' metadata describes a network of at least {:.0f} parameters; the file "
                              "holds {:.0f} values", path.string(), kMetaKey, at_least, held));
  UNetDenoiser model(o, Schedule(s), pred);
  load_module(path, *model);
  if (metadata) *metadata = meta;
  return model;
}

}  // namespace retort
