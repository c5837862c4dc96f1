#include "retort/generators/few_step_student.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "retort/core/error.h"

namespace retort {

std::vector<int64_t> default_student_timesteps(int64_t K, int64_t schedule_steps) {
  if (K < 1) throw ConfigError(fmt::format("student steps = {} must be at least 1", K));
  std::vector<int64_t> ts;
  for (int64_t i = 0; i < K; ++i) ts.push_back(schedule_steps - 1 - i * schedule_steps / K);
  return ts;
}

FewStepStudentImpl::FewStepStudentImpl(DiffusionModelPtr net_, std::vector<int64_t> timesteps, bool backward_simulation)
    : net(std::move(net_)), timesteps_(std::move(timesteps)), backward_simulation_(backward_simulation) {
  register_module("net", net);
  const int64_t T = net->schedule.options().steps;
  if (timesteps_.empty()) throw ConfigError("a student needs at least one timestep");
  for (size_t i = 0; i < timesteps_.size(); ++i) {
    if (timesteps_[i] < 0 || timesteps_[i] >= T)
      throw ConfigError(fmt::format("student timestep {} is outside the schedule's 0..{}", timesteps_[i], T - 1));
    if (i > 0 && timesteps_[i] >= timesteps_[i - 1])
      throw ConfigError(fmt::format("student timesteps must decrease (got {} after {})", timesteps_[i],
                                    timesteps_[i - 1]));
  }
}

torch::Tensor FewStepStudentImpl::time(int64_t i, int64_t batch, const torch::Device& device) const {
  return torch::full({batch}, net->schedule.time_of_step(timesteps_[i]), torch::dtype(torch::kFloat32).device(device));
}

torch::Tensor FewStepStudentImpl::labels(int64_t n, Rng& rng, const torch::Device& device) const {
  const int64_t C = net->shape().num_classes;
  if (C == 0) return torch::full({n}, kNullClass, torch::dtype(torch::kInt64).device(device));
  return rng.randint(0, C, {n}, device);
}

Cond FewStepStudentImpl::conditions(int64_t n, Rng& rng, const torch::Device& device) const {
  return conditions_ ? conditions_(n, rng, device) : Cond::classes(labels(n, rng, device));
}

std::vector<int64_t> FewStepStudentImpl::shape(int64_t n) const { return net->shape().batch(n); }

torch::Tensor FewStepStudentImpl::simulate(torch::Tensor x, const Cond& cond, int64_t upto, Rng& rng, int64_t batch,
                                           const Share& share, std::vector<torch::Tensor>* draws) {
  torch::NoGradGuard ng;
  for (int64_t i = 0; i < upto; ++i) {
    auto x0 = net->x0(x, time(i, x.size(0), x.device()), cond);
    auto t_next = time(i + 1, x.size(0), x.device());
    auto abar = net->schedule.alpha_bar(t_next).to(x.scalar_type());
    auto eps = share.whole() ? rng.randn(x0.sizes(), x.device()) : share.rows(rng.randn(shape(batch), x.device()));
    if (draws) draws->push_back(eps);
    x = per_sample(abar.sqrt(), x0) * x0 + per_sample((1 - abar).sqrt(), x0) * eps;
  }
  return x;
}

GenBatch FewStepStudentImpl::draw(int64_t batch, Rng& rng) { return draw(batch, Share{}, rng); }

GenBatch FewStepStudentImpl::draw(int64_t batch, const Share& share, Rng& rng) {
  auto device = net->device();
  Cond cond = share.rows(conditions(batch, rng, device), batch, device);
  auto x = share.rows(rng.randn(shape(batch), device));
  const int64_t K = timesteps_.size();
  int64_t k = backward_simulation_ ? rng.randint(0, K, {1}).item<int64_t>() : 0;
  x = simulate(x, cond, k, rng, batch, share);
  return {net->x0(x, time(k, x.size(0), device), cond), cond};
}

torch::Tensor FewStepStudentImpl::sample(const torch::Tensor& lab, Rng& rng, int64_t batch, torch::Tensor* draws) {
  return sample(Cond::classes(lab), lab.size(0), rng, batch, draws);
}

torch::Tensor FewStepStudentImpl::sample(const Cond& all, int64_t N, Rng& rng, int64_t batch, torch::Tensor* draws) {
  torch::NoGradGuard ng;
  auto device = net->device();
  std::vector<torch::Tensor> out, drawn;
  const int64_t K = timesteps_.size();
  for (int64_t i = 0; i < N; i += batch) {
    const int64_t b = std::min(batch, N - i);
    Cond cond = all.slice(i, b, device);
    std::vector<torch::Tensor> these{rng.randn(shape(b), device)};
    auto x = simulate(these[0], cond, K - 1, rng, 0, {}, draws ? &these : nullptr);
    out.push_back(net->x0(x, time(K - 1, b, device), cond));
    if (draws) drawn.push_back(torch::stack(these));
  }
  if (draws) *draws = torch::cat(drawn, 1);
  return torch::cat(out).clamp(-1, 1);
}

GenBatch FewStepStudentImpl::draw_eval(int64_t n, Rng& rng) {
  auto device = net->device();
  Cond cond = conditions(n, rng, device);
  return {sample(cond, n, rng), cond};
}

void FewStepStudentImpl::set_regression(RegressionPairs pairs, double weight, int64_t batch) {
  const auto o = net->shape();
  const std::vector<int64_t> shape{o.channels, o.resolution, o.resolution};
  const int64_t N = pairs.noise.defined() ? pairs.noise.size(0) : 0;
  if (N == 0 || pairs.noise.sizes().slice(1) != shape || pairs.images.sizes() != pairs.noise.sizes() ||
      pairs.labels.dim() != 1 || pairs.labels.size(0) != N)
    throw Error(fmt::format("regression pairs: expected noise and images [N,{},{},{}] and labels [N], N > 0",
                            o.channels, o.resolution, o.resolution));
  if (weight <= 0 || batch < 1) throw Error("regression pairs: weight and batch must be positive");
  auto device = net->device();
  pairs_ = {pairs.noise.to(device), pairs.labels.to(device), pairs.images.to(device)};
  regression_weight_ = weight;
  regression_batch_ = batch;
}

torch::Tensor FewStepStudentImpl::regularization(Rng& rng, const Share& share) {
  if (regression_weight_ <= 0) return {};
  auto device = pairs_.noise.device();
  auto idx = share.rows(rng.randint(0, pairs_.noise.size(0), {regression_batch_}, device));
  auto z = pairs_.noise.index_select(0, idx);
  auto x0 = net->x0(z, time(0, idx.size(0), device), Cond::classes(pairs_.labels.index_select(0, idx)));
  return regression_weight_ * (x0 - pairs_.images.index_select(0, idx)).pow(2).mean();
}

// The student's own metadata ("retort.student"), beside the UNet's.
struct StudentMeta {
  std::vector<int64_t> timesteps;
};

const OptionTable<StudentMeta>& student_meta_table() {
  static const auto table = [] {
    OptionTable<StudentMeta> t;
    t.integers("timesteps", &StudentMeta::timesteps, 0, 1'000'000, "discrete timesteps, decreasing");
    return t;
  }();
  return table;
}

void save_student(const std::filesystem::path& path, FewStepStudent& student) {
  student->net->save(path, {{"retort.student", student_meta_table().to_json({student->timesteps()}).dump()}});
}

std::filesystem::path student_file(const std::filesystem::path& dir, const std::string& stem) {
  for (const char* ext : {".safetensors", ".pt"})
    if (std::filesystem::exists(dir / (stem + ext))) return dir / (stem + ext);
  return dir / (stem + ".safetensors");
}

FewStepStudent load_student(const std::filesystem::path& path) {
  std::map<std::string, std::string> meta;
  auto net = load_diffusion_model(path, &meta);
  return as_student(std::move(net), meta, path);
}

FewStepStudent as_student(DiffusionModelPtr net, const std::map<std::string, std::string>& meta,
                          const std::filesystem::path& path) {
  auto it = meta.find("retort.student");
  if (it == meta.end()) return nullptr;
  StudentMeta m;
  try {
    auto j = nlohmann::json::parse(it->second);
    student_meta_table().require_keys(j);
    student_meta_table().from_json(j, m);
  } catch (const std::exception& e) {
    throw IoError(fmt::format("{}: bad 'retort.student' metadata: {}", path.string(), e.what()));
  }
  try {
    return FewStepStudent(net, m.timesteps);
  } catch (const ConfigError& e) {
    throw IoError(fmt::format("{}: {}", path.string(), e.what()));
  }
}

}  // namespace retort
