// Runs a scope with runtime.conv = `conv` ("winograd" | "direct"), and "auto" again after it: the
// tests that compare retort's UNet with LibTorch's own convolutions (a TorchScript export, Python)
// use "direct", which computes what they compute bit for bit.
#pragma once
#include <string>

#include "retort/core/runtime.h"

namespace retort::test {

struct ScopedConv {
  explicit ScopedConv(const std::string& conv) { set(conv); }
  ~ScopedConv() { set("auto"); }
  ScopedConv(const ScopedConv&) = delete;
  ScopedConv& operator=(const ScopedConv&) = delete;
  static void set(const std::string& conv) {
    RuntimeOptions rt;
    rt.torch_threads = 1;  // tests/main.cpp's
    rt.conv = conv;
    apply_runtime(rt);
  }
};

}  // namespace retort::test
