// `retort bench-gmm`: every configured method x generator run against the exact mixture teacher,
// scored against exact target samples, each run repeated at `seeds` independent seeds. Writes
// DIR/results.json, DIR/results.md, one PNG per run and DIR/overview.png (seed 0). Finished runs are
// kept in DIR/runs/NAME[.seed-K]/result.json, so a killed benchmark resumes where it stopped (an
// unfinished run resumes from its checkpoint).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "retort/bench/gmm_config.h"

namespace retort {

struct GmmBenchOptions {
  bool progress = true;
};

// Runs the benchmark; returns the results (also written to DIR/results.json).
nlohmann::json run_gmm_bench(const GmmBenchConfig& cfg, const std::filesystem::path& out_dir,
                             const GmmBenchOptions& opts = {});
// One run at one seed: trains and scores it (no files outside run_dir).
nlohmann::json run_gmm_single(const GmmBenchConfig& cfg, const RunSpec& run, uint64_t seed,
                              const std::filesystem::path& run_dir, bool progress);
// The results as a Markdown table: mean ± standard deviation over the seeds where a run has
// several, and the recovered mass of every light mode (weight below half the heaviest's).
std::string results_markdown(const nlohmann::json& results);

}  // namespace retort
