// OpenCLIP's cosine_lr: linear warmup base_lr*(step+1)/warmup, then cosine decay to 0.
#pragma once
#include <cstdint>

namespace cliprepro {

// `step` counts optimizer steps from 0, as OpenCLIP's scheduler argument.
double cosine_lr(double base_lr, int64_t warmup, int64_t total_steps, int64_t step);

}  // namespace cliprepro
