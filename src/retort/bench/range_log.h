// Records every op's start and end, as LibTorch's profilers do, without allocating per op: the
// events go into memory mapped outside malloc's heap, and op names are interned once.
//
// Why not the legacy profiler for timing: it keeps each event's name as a std::string, and those
// small heap blocks land among the step's freed tensors. Under the runtime's keep-freed-memory
// policy (no trimming, no mmap) they keep the freed blocks from merging, so the next step's
// tensors come from fresh pages: a 556 ms teacher step took 1406 ms profiled, with 80 000 more page
// faults per step. Under RangeLog the same step takes about what it takes unprofiled.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace retort {

// One range's start (push) or end (pop) on one thread.
struct RangeEvent {
  uint64_t handle = 0;    // pairs a pop with its push (at::RecordFunctionHandle)
  int64_t ns = 0;         // steady clock
  uint32_t name = 0;      // RangeLog::names() index
  uint32_t thread = 0;    // numbered in the order threads first record
  bool push = false;
};

// Installs a global RecordFunction callback for its lifetime (one at a time per process).
class RangeLog {
 public:
  RangeLog();
  ~RangeLog();
  RangeLog(const RangeLog&) = delete;
  RangeLog& operator=(const RangeLog&) = delete;

  // Stops recording and returns the events in order, per thread; names() resolves their names.
  std::vector<std::vector<RangeEvent>> stop();
  const std::vector<std::string>& names() const;
};

}  // namespace retort
