// Capture points: LibTorch has no forward hooks (pytorch#25888), so modules
// record their outputs on an explicit tape, named by OpenCLIP module paths.
#pragma once
#include <torch/types.h>

#include <string>
#include <utility>

#include <vector>
#include "src/log_schema.h"

namespace cliprepro {

class CaptureTape {
 public:
  // Records a detached view; callers must not modify `t` in place afterwards.
  void record(std::string name, const torch::Tensor& t) {
    entries_.emplace_back(std::move(name), t.detach());
  }
  const std::vector<std::pair<std::string, torch::Tensor>>& entries() const { return entries_; }
  void clear() { entries_.clear(); }

 private:
  std::vector<std::pair<std::string, torch::Tensor>> entries_;
};

// The log name of a tape entry: plain names are module outputs ("activations/<path>"); names
// that carry a family prefix (bn_batch/...) keep it.
inline std::string capture_log_name(const std::string& entry) {
  return entry.find('/') == std::string::npos ? family::kActivations + entry : entry;
}

// Told every capture point the model passes, taped or not, on this thread: `cliprepro trace`
// attributes the ops run since the previous capture to the module whose output this is.
using CaptureObserver = void (*)(const std::string& name);
inline thread_local CaptureObserver capture_observer = nullptr;

inline void capture(CaptureTape* tape, const std::string& name, const torch::Tensor& t) {
  if (capture_observer != nullptr) capture_observer(name);
  if (tape != nullptr) tape->record(name, t);
}

}  // namespace cliprepro
