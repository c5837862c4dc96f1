// A training checkpoint (LibTorch's archive: a zip of pickled tensors) restored into a small
// module and its Adam state, as every command resumes; and the warm-start reader of its weights.
#include "fuzz_target.h"
#include "retort/core/rng.h"
#include "retort/train/checkpoint.h"

namespace {

struct Tiny {
  torch::nn::Linear net{torch::nn::LinearOptions(3, 2)};
  torch::optim::Adam opt{net->parameters(), torch::optim::AdamOptions(1e-3)};
  double seconds = 0;
  retort::CheckpointParts parts() { return {{{"net", net.get()}}, {{"opt", &opt}}, {{"seconds", &seconds}}}; }
};

void write_seed(const std::filesystem::path& file) {
  Tiny t;
  t.net->forward(torch::ones({1, 3})).sum().backward();
  t.opt.step();  // so the optimiser state holds tensors
  retort::save_checkpoint(file, t.parts(), 7, retort::Rng(1), "seed = 1\n");
}

#ifndef RETORT_LIBFUZZER
const retort::fuzz::SeedRegistration seed("checkpoint", write_seed);
#endif

}  // namespace

RETORT_FUZZ_TARGET(checkpoint) {
  const auto path = retort::fuzz::as_file(data, size, "checkpoint.pt");
  retort::fuzz::expect_clean([&] {
    Tiny t;
    retort::Rng rng(0);
    retort::load_checkpoint(path, t.parts(), rng, "seed = 1\n");
  });
  retort::fuzz::expect_clean([&] {
    Tiny t;
    retort::load_checkpoint_weights(path, {{"net", t.net.get()}});
  });
}
