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

// kStreaming: every step reaches the disk before write() returns (a crash keeps all complete
// steps). kBuffered: step series are held in memory and written, deflated, at close() —
// for goldens, which are written to a temporary file and renamed, so crash-safety is moot and
// compactness matters (rewriting compressed chunks every step would fragment the file).
enum class WriteMode { kStreaming, kBuffered };

class LogWriter {
 public:
  // `provenance`: string-valued entries become root attributes (objects are stored as JSON).
  LogWriter(const std::filesystem::path& path, LogSelection selection, int64_t last_step,
            const nlohmann::json& provenance, WriteMode mode = WriteMode::kStreaming);
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
  void flush_series();
  bool compress_series() const { return mode_ == WriteMode::kBuffered; }

  std::filesystem::path path_;
  LogSelection selection_;
  int64_t last_step_;
  WriteMode mode_;
  int64_t last_written_ = -1;
  H5Id file_;
  std::map<std::string, std::unique_ptr<Series>> series_;
};

}  // namespace cliprepro
