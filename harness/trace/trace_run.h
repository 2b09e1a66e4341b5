// Runs a scenario from step 1 to the last of `steps` (as `run` would: same seeds, pins and
// batches; zero-shot, checkpoints and loader threads off, which change no training bit) and
// traces every ATen op of the chosen steps (harness/trace/op_trace.h). World size 1.
#pragma once
#include <vector>

#include "harness/scenario/scenario.h"
#include "harness/trace/trace_file.h"

namespace cliprepro {

Trace trace_scenario(const Scenario& s, std::vector<int64_t> steps);

}  // namespace cliprepro
