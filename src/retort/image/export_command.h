// `retort export`: a teacher or few-step student written for Python (models/torchscript_export.h).
#pragma once
#include <filesystem>
#include <string>

namespace retort {

struct ExportRequest {
  std::filesystem::path model;        // a teacher or student file
  std::string format = "torchscript";  // the only format so far
  std::filesystem::path out;          // the archive to write
};

// Returns a one-line summary ("wrote OUT: 4-step student (retort UNet): forward, sample").
std::string run_export(const ExportRequest& req);

// The model in `in` (a retort UNet teacher or student, or a student of a TorchScript teacher)
// written to `out` as TorchScript (models/torchscript_export.h); returns what was written.
std::string export_torchscript(const std::filesystem::path& in, const std::filesystem::path& out);

}  // namespace retort
