// What every command that writes a run folder uses: creating the folder, writing its files
// atomically, and the run's identity (what makes a checkpoint or a kept result belong to a run).
#pragma once
#include <filesystem>
#include <functional>
#include <string>

#include <torch/torch.h>

#include "retort/core/runtime.h"

namespace retort {

// Creates `dir` and its parents and checks it can be written; IoError naming it when either fails.
// The one way an output folder is made.
void create_output_folder(const std::filesystem::path& dir);
// Holds `dir`/.lock (an flock) for the rest of the process, so a second process started on the
// same folder is refused with an IoError naming the holder's pid. The kernel drops the lock when its
// holder dies, so the folder of a killed run is taken over (a line on stderr says so). Calling it
// again for a folder this process holds does nothing.
void lock_output_folder(const std::filesystem::path& dir);
// Whether another process holds `dir`'s lock now (a run is going on there).
bool output_folder_in_use(const std::filesystem::path& dir);
// The start of every command that writes a run folder: creates and locks `out` (rank 0), applies
// the thread policy and returns the device. A `data_parallel` command joins torchrun's process group (dist/world.h)
// and gets its rank's device; any other command refuses to run as one of several ranks.
torch::Device start_run(const std::filesystem::path& out, const RuntimeOptions& runtime, bool data_parallel = false);
// Atomic text file write (tmp + rename).
void write_text_atomic(const std::filesystem::path& path, const std::string& text);
// `out`/config.resolved.toml of a (possibly data-parallel) run, by rank 0 alone: the resolved config,
// and at world size N > 1 a last comment line recording N (its batch keys are global batches).
void write_resolved_config(const std::filesystem::path& out, const std::string& config_text);
// Every checkpoint a run writes calls checkpoint_written() (train/checkpoint.cpp); the CLI sets an
// observer that rewrites the run's report.html, so a long run's report shows its progress.
void set_checkpoint_observer(std::function<void()> observer);
void checkpoint_written();
// A run's identity: its resolved config, then the teacher's fingerprint, so a teacher retrained in
// place starts its runs afresh instead of resuming them. Checkpoints and kept results store it.
std::string run_identity(const std::string& resolved_toml, const std::filesystem::path& teacher);

}  // namespace retort
