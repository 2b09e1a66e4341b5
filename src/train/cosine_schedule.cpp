#include "src/train/cosine_schedule.h"

#include <cmath>
#include <numbers>

namespace cliprepro {

double cosine_lr(double base_lr, int64_t warmup, int64_t total_steps, int64_t step) {
  if (step < warmup) return base_lr * double(step + 1) / double(warmup);
  const double e = double(step - warmup);
  const double es = double(total_steps - warmup);
  return 0.5 * (1 + std::cos(std::numbers::pi * e / es)) * base_lr;
}

}  // namespace cliprepro
