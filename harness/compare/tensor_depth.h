// Layer depth of each logged tensor, for the depth-aware tolerance k·C^depth·eps(dtype)
// (Megatron-LM's ‖ĝ−g‖/‖g‖ ≤ k·C^(L+1−l)·ε for layer l of L). Layers are the log's forward
// capture points (`activations/*`) in execution order, one chain per tower (`visual.*`, the
// rest = text): a forward tensor of capture point l has depth l (error grows from the input);
// a parameter's gradient, value and Adam moments have depth L + 1 − l of the capture point
// whose module holds it (error grows backward from the loss). Tensors no capture point holds
// (loss, logits, scalars, projections) get depth 1.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "harness/log/log_reader.h"

namespace cliprepro {

std::map<std::string, int64_t> tensor_depths(const LogReader& log);

}  // namespace cliprepro
