// A trace file (cliprepro trace): HDF5 like the logs, one group per traced step,
// /steps/<s>/{name,phase,module,inputs,outputs} (UTF-8 strings; inputs/outputs are JSON arrays
// of [desc] or [desc, "<16 hex digits>"]) and {depth,parent,end_order} (int64), one row per op
// in start order; provenance in root attributes (format "cliprepro-trace", scenario,
// fingerprint, git_commit). Layout: docs/trace.md.
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "harness/trace/op_trace.h"

namespace cliprepro {

inline constexpr const char* kTraceFormat = "cliprepro-trace";
inline constexpr int kTraceFormatVersion = 1;

struct TraceStep {
  int64_t step = 0;
  std::vector<TracedOp> ops;
};

struct Trace {
  std::map<std::string, std::string> attrs;  // provenance
  std::vector<TraceStep> steps;              // in step order
};

// Written to a temporary file beside `path` and renamed into place.
void write_trace(const std::filesystem::path& path, const Trace& trace);
// Throws std::runtime_error naming the file when it is not a trace of this format.
Trace read_trace(const std::filesystem::path& path);

}  // namespace cliprepro
