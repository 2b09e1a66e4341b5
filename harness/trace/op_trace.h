// Op-level trace (cliprepro trace): every ATen op a training step dispatches, in execution
// order, with the digest of each input and output. Recorded with at::RecordFunction callbacks
// at the dispatcher, so no model code changes; two traces of one step then name the first
// kernel whose inputs are equal and whose outputs differ (harness/trace/trace_compare.h).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cliprepro {

// One argument or result: "f32[32,64]" with its XXH3-64 digest (has_digest), or a non-tensor
// value as text ("0.001", "None", "[1, 2]") compared as text.
struct TracedValue {
  std::string desc;
  uint64_t digest = 0;
  bool has_digest = false;
  bool operator==(const TracedValue&) const = default;
};

struct TracedOp {
  std::string name;       // "aten::addmm"
  std::string phase;      // forward (with the loss), backward, optimizer
  std::string module;     // OpenCLIP module path; backward: "<module> (<Node>)"; optimizer: tensor
  int32_t depth = 0;      // 0: called by the trainer; d: called inside an op at depth d - 1
  int64_t parent = -1;    // index of the op it runs inside, -1 at depth 0
  int64_t end_order = 0;  // completion order: an op completes after every op it calls
  std::vector<TracedValue> inputs, outputs;  // inputs as they were when the op started
};

// Traces the ops of the thread that creates it (and of the autograd engine working for that
// thread) while a phase is set; one tracer at a time. `tensor_names` names the storages of
// parameters and optimizer state by log name (data pointer -> name), for optimizer ops.
class OpTracer {
 public:
  explicit OpTracer(std::map<const void*, std::string> tensor_names);
  ~OpTracer();
  OpTracer(const OpTracer&) = delete;
  OpTracer& operator=(const OpTracer&) = delete;

  // "forward", "backward", "optimizer" record; "" pauses (Trainer's PhaseObserver).
  void set_phase(const std::string& phase);
  // The ops recorded since the last take(), modules resolved; starts a new step.
  std::vector<TracedOp> take();

  // Called by the RecordFunction callbacks and the capture observer (op_trace.cpp).
  struct Impl;

 private:
  Impl* impl_;
};

}  // namespace cliprepro
