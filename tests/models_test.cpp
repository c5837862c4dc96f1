// Fake scores start exactly at their base and train only what they should; CFG is the formula.
#include <gtest/gtest.h>

#include "retort/core/error.h"
#include "retort/models/fake_score.h"
#include "retort/models/gaussian_mixture.h"
#include "retort/models/mlp.h"
#include "test_util.h"

namespace retort {
namespace {

using test::max_abs_diff;

MlpDenoiser small_teacher(int64_t classes) {
  torch::manual_seed(0);
  MlpOptions o;
  o.dim = 3;
  o.hidden = 16;
  o.blocks = 2;
  o.num_classes = classes;
  o.cond_dim = 8;
  return MlpDenoiser(o, Schedule());
}

struct Inputs {
  torch::Tensor x = torch::randn({5, 3}), t = torch::rand({5});
  Cond cond = Cond::classes(torch::tensor(std::vector<int64_t>{0, 1, 2, kNullClass, 1}));
};

TEST(Models, LoraCopyStartsAtTeacherAndTrainsOnlyAdapters) {
  auto teacher = small_teacher(3);
  auto fake = lora_copy(*teacher, 4, 4.0);
  Inputs in;
  EXPECT_LT(max_abs_diff(fake->eps(in.x, in.t, in.cond), teacher->eps(in.x, in.t, in.cond)), 1e-6);
  auto params = trainable_parameters(*fake);
  ASSERT_FALSE(params.empty());
  for (const auto& item : fake->named_parameters())
    EXPECT_EQ(item.value().requires_grad(), item.key().find("lora_") != std::string::npos) << item.key();
  // One step on the adapters changes the output; the teacher is untouched.
  auto before = teacher->eps(in.x, in.t, in.cond).detach();
  torch::optim::SGD opt(params, 0.1);
  auto loss = fake->eps(in.x, in.t, in.cond).pow(2).mean();
  opt.zero_grad();
  loss.backward();
  opt.step();
  opt.zero_grad();
  loss = fake->eps(in.x, in.t, in.cond).pow(2).mean();
  loss.backward();
  opt.step();
  EXPECT_GT(max_abs_diff(fake->eps(in.x, in.t, in.cond), before), 1e-5);
  EXPECT_LT(max_abs_diff(teacher->eps(in.x, in.t, in.cond), before), 1e-7);
}

TEST(Models, LearnedConditionStartsAtItsClassAndTrainsOnlyPhi) {
  auto teacher = small_teacher(3);
  DenoiserPtr base = teacher.ptr();
  freeze(*teacher);
  LearnedCondition phi(base, Cond::classes(torch::tensor(std::vector<int64_t>{2})));
  Inputs in;
  auto as_class2 = Cond::classes(torch::full({5}, 2, torch::kLong));
  EXPECT_LT(max_abs_diff(phi->eps(in.x, in.t, in.cond), teacher->eps(in.x, in.t, as_class2)), 1e-6);
  auto params = trainable_parameters(*phi);
  ASSERT_EQ(params.size(), 1u);
  EXPECT_EQ(params[0].sizes(), torch::IntArrayRef({8}));
}

TEST(Models, DeltaFakeStartsAtBase) {
  auto mix = std::make_shared<MixtureTeacher>(GaussianMixture::ring(3, 3, 1.0, 0.2, false), Schedule());
  MlpOptions o;
  o.dim = 3;
  o.hidden = 16;
  DeltaFake fake(mix, o, Schedule());
  Inputs in;
  EXPECT_LT(max_abs_diff(fake->eps(in.x, in.t, Cond{}), mix->eps(in.x, in.t, Cond{})), 1e-7);
  EXPECT_FALSE(trainable_parameters(*fake).empty());
  // The analytic teacher has no embedding to learn.
  EXPECT_THROW(LearnedCondition(mix, Cond{}), Error);
}

TEST(Models, ClassifierFreeGuidanceIsTheFormula) {
  auto teacher = small_teacher(3);
  Inputs in;
  auto e_null = teacher->eps(in.x, in.t, in.cond.as_null()), e_y = teacher->eps(in.x, in.t, in.cond);
  EXPECT_LT(max_abs_diff(eps_cfg(*teacher, in.x, in.t, in.cond, 7.5), e_null + 7.5 * (e_y - e_null)), 1e-5);
  EXPECT_LT(max_abs_diff(eps_cfg(*teacher, in.x, in.t, in.cond, 1.0), e_y), 1e-7);
  EXPECT_THROW(teacher->eps(in.x, in.t, Cond::classes(torch::tensor(std::vector<int64_t>{0, 1, 5, 0, 0}))), Error);
}

}  // namespace
}  // namespace retort
