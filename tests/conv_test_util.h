// Runs a scope with runtime.conv = `conv` ("winograd" | "direct") and runtime.attention =
// `attention`, and "auto" again after it: the tests that compare retort's UNet with LibTorch's own
// ops (a TorchScript export, Python) use "direct" and "bmm", which compute what they compute.
#pragma once
#include <string>

#include "retort/core/runtime.h"

namespace retort::test {

struct ScopedConv {
  explicit ScopedConv(const std::string& conv, const std::string& attention = "auto") { set(conv, attention); }
  ~ScopedConv() { set("auto", "auto"); }
  ScopedConv(const ScopedConv&) = delete;
  ScopedConv& operator=(const ScopedConv&) = delete;
  static void set(const std::string& conv, const std::string& attention) {
    RuntimeOptions rt;
    rt.torch_threads = 1;  // tests/main.cpp's
    rt.conv = conv;
    rt.attention = attention;
    apply_runtime(rt);
  }
};

}  // namespace retort::test
