// The UNet as a video model: frames folded into the batch, Cond::concat appended to the input,
// temporal attention mixing the frames only where enabled.
#include <gtest/gtest.h>

#include "image_test_util.h"
#include "retort/io/safetensors.h"
#include "retort/models/unet.h"
#include "test_util.h"

namespace retort {
namespace {

UNetOptions video(int64_t temporal_heads, int64_t frames = 3) {
  UNetOptions o;
  o.channels = 3;
  o.resolution = 8;
  o.widths = {8, 16};
  o.time_dim = 16;
  o.num_classes = 0;
  o.groups = 4;
  o.heads = 2;
  o.frames = frames;
  o.concat_channels = 4;
  o.temporal_heads = temporal_heads;
  return o;
}

// Zero-initialised output layers (and temporal projections) make a fresh model trivial; perturb all.
void randomize(torch::nn::Module& m) {
  torch::NoGradGuard ng;
  for (auto& p : m.parameters()) p.add_(torch::randn_like(p) * 0.1);
}

TEST(VideoUNet, ShapesAndConcatChecks) {
  torch::manual_seed(0);
  UNet net(video(2));
  auto x = torch::randn({2, 3, 3, 8, 8});
  auto t = torch::tensor({0.3f, 0.9f});
  Cond c;
  c.concat = torch::randn({2, 3, 4, 8, 8});
  EXPECT_EQ(net->forward(x, t, c).sizes(), x.sizes());
  auto f = net->encode(x, t, c);
  EXPECT_EQ(f.sizes(), (std::vector<int64_t>{2, 3, 16, 4, 4}));
  EXPECT_NE(test::error_of<Error>([&] { net->forward(x, t, Cond{}); }).find("none given"), std::string::npos);
  Cond bad;
  bad.concat = torch::randn({2, 3, 3, 8, 8});
  EXPECT_NE(test::error_of<Error>([&] { net->forward(x, t, bad); }).find("Cond::concat must be [2,3,4,8,8]"), std::string::npos);
  EXPECT_NE(test::error_of<Error>([&] { net->forward(torch::randn({2, 4, 3, 8, 8}), t, c); }).find("expected videos [B,3,3,H,W]"),
            std::string::npos);
  UNetOptions no_frames = video(2, 0);
  EXPECT_NE(test::error_of<Error>([&] { UNet n(no_frames); }).find("needs a video model"), std::string::npos);
}

// Changing frame 0's input changes the other frames' outputs only through temporal attention.
TEST(VideoUNet, TemporalAttentionMixesFramesOnlyWhenEnabled) {
  for (int64_t heads : {0, 2}) {
    torch::manual_seed(1);
    UNet net(video(heads));
    randomize(*net);
    torch::NoGradGuard ng;
    auto x = torch::randn({1, 3, 3, 8, 8});
    auto t = torch::tensor({0.5f});
    Cond c;
    c.concat = torch::randn({1, 3, 4, 8, 8});
    auto y = net->forward(x, t, c);
    auto x2 = x.clone();
    x2.select(1, 0).add_(1.0);
    auto y2 = net->forward(x2, t, c);
    const double own = (y2.select(1, 0) - y.select(1, 0)).abs().max().item<double>();
    const double others = (y2.slice(1, 1) - y.slice(1, 1)).abs().max().item<double>();
    EXPECT_GT(own, 1e-3) << heads;
    if (heads == 0)
      EXPECT_EQ(others, 0.0);
    else
      EXPECT_GT(others, 1e-3);
  }
}

// Fresh temporal blocks are the identity: a new video model is the image model applied per frame.
TEST(VideoUNet, FreshTemporalBlocksAreTheIdentity) {
  torch::manual_seed(2);
  UNet with(video(2));
  UNet without(video(0));
  torch::NoGradGuard ng;
  auto src = with->named_parameters();
  for (auto& p : without->named_parameters()) p.value().copy_(src[p.key()]);
  auto x = torch::randn({2, 3, 3, 8, 8});
  auto t = torch::tensor({0.2f, 0.7f});
  Cond c;
  c.concat = torch::randn({2, 3, 4, 8, 8});
  // out_conv is zero at init; compare the bottleneck features instead.
  EXPECT_LT(test::max_abs_diff(with->encode(x, t, c), without->encode(x, t, c)), 1e-6);
}

TEST(VideoUNet, ConditionDropoutZeroesTheConcat) {
  Cond c;
  c.concat = torch::ones({3, 2, 4, 2, 2});
  auto d = c.dropped(torch::tensor({true, false, true}));
  EXPECT_EQ(d.concat.select(0, 0).abs().sum().item<double>(), 0.0);
  EXPECT_EQ(d.concat.select(0, 1).sum().item<double>(), 2 * 4 * 2 * 2);
  EXPECT_EQ(d.concat.select(0, 2).abs().sum().item<double>(), 0.0);
  EXPECT_EQ(c.as_null().concat.abs().sum().item<double>(), 0.0);
  EXPECT_FALSE(c.unconditional());
  EXPECT_TRUE(c.as_null().unconditional());
  EXPECT_EQ(Cond::cat(c, c).concat.size(0), 6);
  EXPECT_EQ(c.index(torch::tensor({2}, torch::kInt64)).concat.size(0), 1);
}

TEST(VideoUNet, SafetensorsRoundTrip) {
  test::TempDir tmp("video-unet");
  torch::manual_seed(3);
  UNetDenoiser m(video(2), Schedule(), Prediction::V);
  randomize(*m);
  save_unet(tmp.path / "video.safetensors", m);
  auto back = load_unet(tmp.path / "video.safetensors");
  EXPECT_EQ(back->net->options().frames, 3);
  EXPECT_EQ(back->net->options().temporal_heads, 2);
  EXPECT_EQ(back->net->options().concat_channels, 4);
  torch::NoGradGuard ng;
  auto x = torch::randn({1, 3, 3, 8, 8});
  auto t = torch::tensor({0.4f});
  Cond c;
  c.concat = torch::randn({1, 3, 4, 8, 8});
  EXPECT_EQ(test::max_abs_diff(m->eps(x, t, c), back->eps(x, t, c)), 0.0);
}

}  // namespace
}  // namespace retort

#include "retort/models/feature_discriminator.h"

namespace retort {
namespace {

// FVGen's discriminator on a video teacher: a 3-D head over the frozen encoder's clip features.
TEST(VideoUNet, FeatureDiscriminatorReadsClips) {
  torch::manual_seed(4);
  UNetDenoiser teacher(video(2), Schedule(), Prediction::V);
  freeze(*teacher);
  FeatureDiscriminator d(teacher.ptr());
  auto x = torch::randn({2, 3, 3, 8, 8}, torch::requires_grad());
  Cond c;
  c.concat = torch::randn({2, 3, 4, 8, 8});
  auto l = d->logit(x, torch::tensor({0.3f, 0.6f}), c);
  EXPECT_EQ(l.sizes(), (std::vector<int64_t>{2}));
  l.sum().backward();
  EXPECT_GT(x.grad().abs().sum().item<double>(), 0.0);
  int64_t conv3d = 0;
  for (const auto& m : d->heads[0]->children()) conv3d += m->as<torch::nn::Conv3dImpl>() != nullptr;
  EXPECT_EQ(conv3d, 3);  // 4x4 bottleneck -> 2 -> 1, then the 1x1x1 logit layer
  EXPECT_EQ(trainable_parameters(*d).size(), d->heads->parameters().size());
  // The multi-level head: a logit per frame and position of each level.
  FeatureDiscriminator levels(teacher.ptr(), DiscFeatures::Levels);
  auto parts = levels->part_logits(x, torch::tensor({0.3f, 0.6f}), c);
  ASSERT_EQ(parts.size(), video(2).widths.size() + 1);
  EXPECT_EQ(parts[0].sizes(), (std::vector<int64_t>{2, 3, 8, 8}));
  EXPECT_EQ(parts.back().sizes(), (std::vector<int64_t>{2, 3, 4, 4}));
}

}  // namespace
}  // namespace retort
