// Test entry point. ctest runs two test processes at once on two cores; each uses one LibTorch
// thread, because OpenMP threads on an oversubscribed machine made steps 7x slower here.
#include <gtest/gtest.h>

#include "retort/core/runtime.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  retort::RuntimeOptions rt;
  rt.torch_threads = 1;
  retort::apply_runtime(rt);
  return RUN_ALL_TESTS();
}
