// Writes one HDF5 log per run: provenance attributes on the root, and for each tensor
// name a group /tensors/<name> with step-indexed, extendible datasets (see docs/hdf5-layout.md).
#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "harness/h5_types.h"
#include "harness/log_selection.h"
#include "src/train/trainer.h"

namespace cliprepro {

inline constexpr int kLogFormatVersion = 1;

class LogWriter {
 public:
  // `provenance`: string-valued entries become root attributes (objects are stored as JSON).
  LogWriter(const std::filesystem::path& path, LogSelection selection, int64_t last_step,
            const nlohmann::json& provenance);
  ~LogWriter();
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  // Digests (and selected full tensors) of one step; flushed to disk before returning.
  void write(const StepRecord& record);
  // Marks the log complete and closes it.
  void close();

 private:
  struct Series;
  Series& series_for(const NamedTensor& t);

  std::filesystem::path path_;
  LogSelection selection_;
  int64_t last_step_;
  H5Id file_;
  std::map<std::string, std::unique_ptr<Series>> series_;
};

}  // namespace cliprepro
