#include "retort/dist/world.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef RETORT_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "retort/core/error.h"

namespace retort {
namespace {

// The joined group. The collectives are held as functions so one code path serves Gloo and NCCL
// (and LibTorch 1.13's ProcessGroup as well as 2.x's Backend classes).
struct DistGroup {
  bool joined = false;
  World world;
  torch::Device device{torch::kCPU};  // where the group's tensors live (CPU for Gloo)
  std::chrono::milliseconds timeout{0};
  int64_t bucket_bytes = 0;
  bool overlap = true;
  double collective_seconds = 0;
  std::function<c10::intrusive_ptr<c10d::Work>(std::vector<at::Tensor>&)> allreduce, broadcast;
};

DistGroup& dist_group() {
  static DistGroup g;
  return g;
}

std::string dist_env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

int dist_env_int(const char* name, int fallback) {
  const std::string v = dist_env(name);
  if (v.empty()) return fallback;
  size_t used = 0;
  int x = 0;
  try {
    x = std::stoi(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v.size()) throw ConfigError(fmt::format("environment {}='{}' is not an integer", name, v));
  return x;
}

[[noreturn]] void collective_failed(const char* what, const std::exception& e) {
  const auto& g = dist_group();
  std::string msg = e.what();
  if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
  throw Error(fmt::format("rank {} of {}: {} over {} failed: another rank stopped or did not answer within "
                          "runtime.dist_timeout = {} s ({})",
                          g.world.rank, g.world.size, what, g.world.backend, g.timeout.count() / 1000.0, msg));
}

// Runs a collective and waits for it: a rank that died or hangs becomes one clear error here
// (after at most [runtime] dist_timeout) instead of a hang.
void run_collective(const char* what, std::vector<at::Tensor>& tensors,
         const std::function<c10::intrusive_ptr<c10d::Work>(std::vector<at::Tensor>&)>& op) {
  auto& g = dist_group();
  const auto t0 = std::chrono::steady_clock::now();
  struct Clock {  // counted whether the collective succeeds or throws
    DistGroup& g;
    std::chrono::steady_clock::time_point t0;
    ~Clock() { g.collective_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); }
  } clock{g, t0};
  try {
    op(tensors)->wait(g.timeout);
  } catch (const std::exception& e) {
    collective_failed(what, e);
  }
}

}  // namespace

const World& world() { return dist_group().world; }

int launched_world_size() { return dist_env_int("WORLD_SIZE", 1); }

torch::Device rank_device(const RuntimeOptions& runtime) {
  auto device = parse_device(runtime.device);
  if (device.is_cuda() && !device.has_index()) {
    const int local = dist_env_int("LOCAL_RANK", 0);
    if (local >= int(torch::cuda::device_count()))
      throw ConfigError(fmt::format("runtime.device: LOCAL_RANK {} but this machine has {} CUDA device(s)", local,
                                    torch::cuda::device_count()));
    device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local));
  }
  return device;
}

const World& join_world(const RuntimeOptions& runtime, const torch::Device& device) {
  auto& g = dist_group();
  if (g.joined) return g.world;
  g.joined = true;
  const int size = launched_world_size();
  if (size <= 1) return g.world;
  World w;
  w.size = size;
  w.rank = dist_env_int("RANK", -1);
  w.local_rank = dist_env_int("LOCAL_RANK", 0);
  w.restart = dist_env_int("TORCHELASTIC_RESTART_COUNT", 0);
  if (w.rank < 0 || w.rank >= size)
    throw ConfigError(fmt::format("environment RANK='{}' must be in [0, WORLD_SIZE = {}) (launch with torchrun)",
                                  dist_env("RANK"), size));
  const std::string addr = dist_env("MASTER_ADDR");
  const int port = dist_env_int("MASTER_PORT", -1);
  if (addr.empty() || port < 1 || port > 65535)
    throw ConfigError(fmt::format("environment MASTER_ADDR='{}' MASTER_PORT='{}': a world of {} needs both (launch "
                                  "with torchrun)",
                                  addr, dist_env("MASTER_PORT"), size));
  w.backend = runtime.backend == "auto" ? (device.is_cuda() ? "nccl" : "gloo") : runtime.backend;
  if (w.backend == "nccl" && !device.is_cuda())
    throw ConfigError("runtime.backend: nccl needs runtime.device = \"cuda\" (Gloo runs on the CPU)");
  g.timeout = std::chrono::milliseconds(int64_t(runtime.dist_timeout * 1000));
  g.bucket_bytes = int64_t(runtime.bucket_mb * 1024 * 1024);
  g.overlap = runtime.overlap;

  // The store, as torch.distributed's env:// rendezvous makes it: rank 0 serves it, unless
  // torchrun's agent already does (then every rank is a client, keys prefixed by the attempt).
  c10::intrusive_ptr<c10d::Store> store;
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(port);
    so.timeout = g.timeout;
    so.numWorkers = size;
    if (dist_env("TORCHELASTIC_USE_AGENT_STORE") == "True") {
      store = c10::make_intrusive<c10d::PrefixStore>(fmt::format("/worker/attempt_{}", w.restart),
                                                     c10::make_intrusive<c10d::TCPStore>(addr, so));
    } else {
      so.isServer = w.rank == 0;
      so.multiTenant = true;
      store = c10::make_intrusive<c10d::TCPStore>(addr, so);
    }
    store = c10::make_intrusive<c10d::PrefixStore>("retort", store);
    if (w.backend == "gloo") {
      auto opts = c10d::ProcessGroupGloo::Options::create(g.timeout);
      const std::string ifname = dist_env("GLOO_SOCKET_IFNAME");
      if (!ifname.empty())
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else if (addr == "127.0.0.1" || addr == "localhost")
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, w.rank, size, opts);
      g.allreduce = [pg](std::vector<at::Tensor>& t) { return pg->allreduce(t); };
      g.broadcast = [pg](std::vector<at::Tensor>& t) { return pg->broadcast(t); };
      g.device = torch::kCPU;
    } else {
#ifdef RETORT_WITH_NCCL
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = g.timeout;
      auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, w.rank, size, opts);
      g.allreduce = [pg](std::vector<at::Tensor>& t) { return pg->allreduce(t); };
      g.broadcast = [pg](std::vector<at::Tensor>& t) { return pg->broadcast(t); };
      g.device = device;
#else
      throw ConfigError("runtime.backend: this retort was built without NCCL (it needs a CUDA LibTorch); use gloo");
#endif
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(fmt::format("rank {} of {}: cannot join the {} process group at {}:{}: {}", w.rank, size, w.backend,
                            addr, port, e.what()));
  }
  g.world = w;
  return g.world;
}

struct StartedCollective {
  c10::intrusive_ptr<c10d::Work> work;
  std::vector<at::Tensor> buffer;
};

std::shared_ptr<StartedCollective> start_sum_over_ranks(const torch::Tensor& buffer) {
  auto& g = dist_group();
  auto started = std::make_shared<StartedCollective>();
  started->buffer = {buffer.to(g.device)};
  try {
    started->work = g.allreduce(started->buffer);
  } catch (const std::exception& e) {
    collective_failed("all-reduce", e);
  }
  return started;
}

torch::Tensor wait_for(StartedCollective& started) {
  run_collective("all-reduce", started.buffer, [&](std::vector<at::Tensor>&) { return started.work; });
  return started.buffer[0];
}

int64_t gradient_bucket_bytes() { return dist_group().bucket_bytes; }
bool overlap_with_backward() { return dist_group().overlap; }

void broadcast_from_rank0(const std::vector<torch::Tensor>& tensors) {
  const auto& g = dist_group();
  if (!g.world.distributed()) return;
  for (const auto& t : tensors) {
    std::vector<at::Tensor> one{t.detach().contiguous().to(g.device)};
    run_collective("broadcast", one, g.broadcast);
    torch::NoGradGuard no_grad;
    t.copy_(one[0]);
  }
}

double mean_over_ranks(double value) {
  const auto& g = dist_group();
  if (!g.world.distributed()) return value;
  std::vector<at::Tensor> one{torch::full({1}, value, torch::TensorOptions().dtype(torch::kFloat64).device(g.device))};
  run_collective("all-reduce", one, g.allreduce);
  return one[0].item<double>() / g.world.size;
}

void barrier() { mean_over_ranks(0.0); }

namespace {

// all-reduce(sum) whose backward is again an all-reduce(sum): d(Σ_r x_r)/dx_r = 1, and the loss of
// the whole world is the sum of the ranks' losses, so rank r's x_r receives every rank's gradient.
struct SumOverRanks : torch::autograd::Function<SumOverRanks> {
  static torch::Tensor summed(const torch::Tensor& x) {
    const auto& g = dist_group();
    std::vector<at::Tensor> one{x.detach().contiguous().to(g.device, /*non_blocking=*/false, /*copy=*/true)};
    run_collective("all-reduce", one, g.allreduce);
    return one[0].to(x.device());
  }
  static torch::Tensor forward(torch::autograd::AutogradContext*, const torch::Tensor& x) { return summed(x); }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext*, torch::autograd::tensor_list grads) {
    return {summed(grads[0])};
  }
};

}  // namespace

torch::Tensor sum_over_ranks(const torch::Tensor& x) {
  if (!dist_group().world.distributed()) return x;
  return SumOverRanks::apply(x);
}

double collective_seconds() { return dist_group().collective_seconds; }

AloneOnThisRank::AloneOnThisRank() : saved_(dist_group().world) { dist_group().world = World{}; }
AloneOnThisRank::~AloneOnThisRank() { dist_group().world = saved_; }

std::pair<int64_t, int64_t> rank_slice(int64_t n, const std::string& key) {
  const auto& w = dist_group().world;
  if (n % w.size != 0)
    throw ConfigError(fmt::format("{}: {} is the global batch; it must be a multiple of the world size {}", key, n,
                                  w.size));
  const int64_t per = n / w.size;
  return {w.rank * per, (w.rank + 1) * per};
}

}  // namespace retort
