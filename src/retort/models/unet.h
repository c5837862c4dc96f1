// A small image UNet (DDPM / ADM style): sinusoidal time embedding plus a class embedding with a
// null class for classifier-free guidance, residual blocks conditioned on both, self-attention at
// the lowest resolution. It is the Fashion-MNIST teacher, the fake score and the few-step student.
// With `frames` > 0 it is a video model (DynamiCrafter / ViewCrafter style): every frame goes
// through the same 2-D blocks, temporal self-attention mixes the frames at the low resolutions,
// and Cond::concat (the point-cloud renders) is appended to each frame's input channels.
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "retort/diffusion/parameterization.h"
#include "retort/diffusion/schedule.h"
#include "retort/models/diffusion_model.h"

namespace retort {

struct UNetOptions {
  int64_t channels = 1;                      // image channels
  int64_t resolution = 28;                   // input height = width
  std::vector<int64_t> widths = {32, 64, 64};  // channels per level; level i works at resolution / 2^i
  int64_t blocks = 1;                        // residual blocks per level (encoder; decoder has one more)
  int64_t time_dim = 128;                    // width of the time / condition embedding
  int64_t num_classes = 10;                  // 0: unconditional
  int64_t groups = 8;                        // GroupNorm groups (must divide every width)
  int64_t heads = 2;                         // attention heads at the lowest resolution (0: no attention)
  double dropout = 0.0;
  int64_t camera_dim = 0;                    // > 0: Cond::camera [B, camera_dim] is added to the embedding
                                             // through a zero-initialised linear map (ASD's camera-aware phi)
  int64_t concat_channels = 0;               // Cond::concat channels appended to the input (0: none)
  int64_t frames = 0;                        // > 0: a video model over x [B, frames, channels, H, W]
  int64_t temporal_heads = 0;                // > 0: temporal self-attention across frames (video models)
  int64_t temporal_from = 1;                 // first level with temporal attention (0 = full resolution);
                                             // the middle block always has it when temporal_heads > 0
};

// LoRA on a convolution (Hu et al.; ASD's and ProlificDreamer's phi): the branch scale * B(A(x))
// added to the base convolution's output, A a rank-r convolution with the base's kernel, stride
// and padding, B a 1x1 convolution that starts at zero, so the adapted layer starts at the base.
class LoraConvImpl : public torch::nn::Module {
 public:
  LoraConvImpl(const torch::nn::detail::ConvNdOptions<2>& base, int64_t rank, double alpha);
  torch::Tensor forward(const torch::Tensor& x);  // the branch alone

 private:
  torch::nn::Conv2d a{nullptr}, b{nullptr};
  double scale_;
};
TORCH_MODULE(LoraConv);

// Where a UNet's LoRA adapters go (`lora_layers`): the attention projections (qkv, output) and the
// residual blocks' two 3x3 convolutions.
struct UNetLora {
  int64_t rank = 4;
  double alpha = 4.0;  // scale = alpha / rank
  std::vector<std::string> layers = {"attention", "resblocks"};
};
std::vector<std::string> lora_layer_names();  // attention, resblocks
// The keys lora_rank, lora_alpha, lora_layers (generate3d's [generate3d], distill's [distill]).
const OptionTable<UNetLora>& unet_lora_option_table();

class ResBlockImpl : public torch::nn::Module {
 public:
  ResBlockImpl(int64_t in, int64_t out, int64_t emb_dim, int64_t groups, double dropout);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb);
  // LoRA on conv1 and conv2 (registered as conv1_lora, conv2_lora: the base's names are kept).
  void enable_lora(int64_t rank, double alpha);

 private:
  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, skip{nullptr};
  LoraConv conv1_lora{nullptr}, conv2_lora{nullptr};
  torch::nn::Linear emb_proj{nullptr};
  torch::nn::Dropout drop{nullptr};
};
TORCH_MODULE(ResBlock);

class AttentionBlockImpl : public torch::nn::Module {
 public:
  AttentionBlockImpl(int64_t channels, int64_t heads, int64_t groups);
  torch::Tensor forward(const torch::Tensor& x);
  // LoRA on the qkv and output projections (qkv_lora, proj_lora).
  void enable_lora(int64_t rank, double alpha);

 private:
  int64_t heads_;
  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Conv2d qkv{nullptr}, proj{nullptr};
  LoraConv qkv_lora{nullptr}, proj_lora{nullptr};
};
TORCH_MODULE(AttentionBlock);

// Self-attention across the frames at each pixel: x [B*K, C, H, W] with the K frames of a clip
// adjacent, a fixed sinusoidal frame-position code added to the normalised features. The output
// projection starts at zero, so at initialisation the block is the identity (each frame alone).
class TemporalAttentionImpl : public torch::nn::Module {
 public:
  TemporalAttentionImpl(int64_t channels, int64_t heads, int64_t groups, int64_t frames);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  int64_t heads_, frames_;
  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(TemporalAttention);

// The network itself: forward() returns the raw output in units of the model's prediction.
class UNetImpl : public torch::nn::Module {
 public:
  explicit UNetImpl(const UNetOptions& opts);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const Cond& cond);
  // The bottleneck features [B, widths.back(), r, r] after the middle blocks ([B, K, widths.back(),
  // r, r] for a video model): what FVGen's and DMD2's discriminator heads read. Costs only the
  // encoder half.
  torch::Tensor encode(const torch::Tensor& x, const torch::Tensor& t, const Cond& cond);
  // The features of every encoder level (after its last residual block, before the downsample:
  // [B, widths[l], r_l, r_l], r_0 = resolution), then the bottleneck of encode(); [B, K, ...] for
  // a video model. What a multi-level discriminator head reads.
  std::vector<torch::Tensor> encode_levels(const torch::Tensor& x, const torch::Tensor& t, const Cond& cond);
  // The class embedding used for `cond` ([B, time_dim]); Cond::embedding replaces it.
  torch::Tensor condition_embedding(const Cond& cond, int64_t batch);
  const UNetOptions& options() const { return opts_; }
  // Adds LoRA adapters to the layers `lora.layers` names (their base weights stay as they are).
  void enable_lora(const UNetLora& lora);

 private:
  torch::Tensor embed(const torch::Tensor& t, const Cond& cond, int64_t batch);
  // Checks x, appends Cond::concat and folds frames into the batch: [B(*K), channels + concat, H, W].
  torch::Tensor input(const torch::Tensor& x, const Cond& cond);
  // Encoder + middle; fills `skips` when given.
  torch::Tensor down(const torch::Tensor& x, const torch::Tensor& emb, std::vector<torch::Tensor>* skips);
  // The temporal block after residual block `i` of `blocks` (down or up), if any.
  torch::Tensor temporal(const std::vector<int64_t>& index, torch::nn::ModuleList& blocks, int64_t i,
                         const torch::Tensor& h);

  UNetOptions opts_;
  torch::nn::Sequential time_mlp{nullptr};
  torch::nn::Embedding class_embed{nullptr};
  torch::nn::Linear camera_proj{nullptr};
  torch::nn::Conv2d in_conv{nullptr}, out_conv{nullptr};
  torch::nn::GroupNorm out_norm{nullptr};
  torch::nn::ModuleList down_blocks, downsamples, up_blocks, upsamples;
  ResBlock mid1{nullptr}, mid2{nullptr};
  AttentionBlock mid_attn{nullptr};
  torch::nn::ModuleList down_temporal, up_temporal;
  std::vector<int64_t> down_temporal_index, up_temporal_index;  // per residual block: entry or -1
  TemporalAttention mid_temporal{nullptr};
};
TORCH_MODULE(UNet);

// The UNet as a diffusion model over a schedule and a prediction type.
class UNetDenoiserImpl : public DiffusionModel {
 public:
  UNetDenoiserImpl(const UNetOptions& opts, Schedule schedule, Prediction prediction);
  torch::Tensor predict(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) override;
  torch::Tensor condition_embedding(const Cond& cond, int64_t batch) override;
  ModelShape shape() const override;
  DiffusionModelPtr copy() override;
  std::vector<torch::Tensor> encode_levels(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) override;
  torch::Tensor encode(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) override;
  void save(const std::filesystem::path& path, const std::map<std::string, std::string>& extra = {}) override;
  std::string file_extension() const override { return ".safetensors"; }
  UNet net{nullptr};
};
TORCH_MODULE(UNetDenoiser);

// Copies every parameter and buffer of `from` into `to` (same architecture); students and fake
// scores start from the teacher this way. Parameters of `to` whose names start with one of
// `keep_own` may be missing in `from` and then keep their own initial values.
void copy_weights(torch::nn::Module& from, torch::nn::Module& to, const std::vector<std::string>& keep_own = {});

// A trainable copy of `teacher` that also reads Cond::camera ([B, camera_dim]); the camera map starts
// at zero, so the copy starts exactly at the teacher (VSD's / ASD's camera-conditioned fake score).
UNetDenoiser camera_conditioned_copy(UNetDenoiserImpl& teacher, int64_t camera_dim);

// ASD's phi as its official code builds it: a copy of `teacher` with LoRA adapters and, when
// camera_dim > 0, the zero-initialised camera map; only those train (the copy's base weights are
// frozen), so it starts exactly at the teacher.
UNetDenoiser lora_copy(UNetDenoiserImpl& teacher, const UNetLora& lora, int64_t camera_dim = 0);

// safetensors with the architecture, schedule and prediction in the metadata (key "retort.unet"),
// so a file alone rebuilds the model. `extra` metadata is kept (e.g. a student's timesteps).
void save_unet(const std::filesystem::path& path, UNetDenoiser& model,
               const std::map<std::string, std::string>& extra = {});
// Every UNetOptions member: the teacher's [model] keys (a subset) and the metadata of saved files.
const OptionTable<UNetOptions>& unet_option_table();
UNetDenoiser load_unet(const std::filesystem::path& path, std::map<std::string, std::string>* metadata = nullptr);

}  // namespace retort
