#include "retort/bench/range_log.h"

#include <ATen/record_function.h>
#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string_view>
#include <unordered_map>

#include "retort/core/error.h"

namespace retort {

// Named, not anonymous: the unity build compiles this file together with others.
namespace range_log_impl {

constexpr size_t kChunkEvents = size_t{1} << 16;

struct Chunk {
  RangeEvent* data = nullptr;
  size_t used = 0;
};

struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct State {
  std::mutex mu;
  bool active = false;
  bool overflow = false;  // mmap failed: events were dropped
  at::CallbackHandle callback = 0;
  std::vector<Chunk> chunks;
  std::unordered_map<std::string, uint32_t, NameHash, std::equal_to<>> ids;
  std::vector<std::string> names;
  std::atomic<uint32_t> next_thread{0};
};

State& state() {
  static State s;
  return s;
}

void record(const at::RecordFunction& fn, bool push) {
  const int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::steady_clock::now().time_since_epoch()).count();
  auto& s = state();
  static thread_local const uint32_t thread = s.next_thread++;
  std::lock_guard lock(s.mu);
  if (!s.active) return;
  const std::string_view name(fn.name());
  uint32_t id;
  if (auto it = s.ids.find(name); it != s.ids.end()) {
    id = it->second;
  } else {  // the first call of an op: the only allocation, and only in the first step
    id = static_cast<uint32_t>(s.names.size());
    s.names.emplace_back(name);
    s.ids.emplace(s.names.back(), id);
  }
  if (s.chunks.empty() || s.chunks.back().used == kChunkEvents) {
    void* p = mmap(nullptr, kChunkEvents * sizeof(RangeEvent), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      s.overflow = true;
      return;
    }
    s.chunks.push_back({static_cast<RangeEvent*>(p), 0});
  }
  auto& c = s.chunks.back();
  c.data[c.used++] = RangeEvent{fn.handle(), ns, id, thread, push};
}

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
  record(fn, true);
  return nullptr;
}

void on_end(const at::RecordFunction& fn, at::ObserverContext*) { record(fn, false); }

void release(State& s) {
  for (auto& c : s.chunks) munmap(c.data, kChunkEvents * sizeof(RangeEvent));
  s.chunks.clear();
}

}  // namespace range_log_impl

RangeLog::RangeLog() {
  using namespace range_log_impl;
  auto& s = state();
  std::lock_guard lock(s.mu);
  if (s.active) throw Error("op profile: a range log is already recording");
  s.chunks.reserve(4096);  // 256 Mi events before this vector grows
  s.ids.reserve(4096);
  s.names.reserve(4096);
  s.overflow = false;
  s.active = true;
  s.callback = at::addGlobalCallback(at::RecordFunctionCallback(&on_start, &on_end).needsIds(true));
}

RangeLog::~RangeLog() {
  using namespace range_log_impl;
  auto& s = state();
  if (!s.active) return;
  at::removeCallback(s.callback);
  std::lock_guard lock(s.mu);
  s.active = false;
  release(s);
}

std::vector<std::vector<RangeEvent>> RangeLog::stop() {
  using namespace range_log_impl;
  auto& s = state();
  if (!s.active) throw Error("op profile: the range log was stopped already");
  at::removeCallback(s.callback);
  std::lock_guard lock(s.mu);
  s.active = false;
  std::vector<std::vector<RangeEvent>> per_thread(s.next_thread.load());
  for (const auto& c : s.chunks)
    for (size_t i = 0; i < c.used; ++i) per_thread[c.data[i].thread].push_back(c.data[i]);
  release(s);
  if (s.overflow) throw Error("op profile: out of memory for the range log; its events are incomplete");
  return per_thread;
}

const std::vector<std::string>& RangeLog::names() const { return range_log_impl::state().names; }

}  // namespace retort
