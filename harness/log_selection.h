// What a log stores: digests every N steps, full tensors at chosen steps for tensors
// matching globs. Scalars (0-d), data/* and eval/* are always stored in full.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace cliprepro {

// One step spec: "7", "-1" (last), "a:b" (a <= s < b), "a:" (a to last), "a:b:k" (stride k).
struct StepSpec {
  int64_t start = 0;
  int64_t stop = 0;  // exclusive; kOpen = through the last step
  int64_t stride = 1;
  static constexpr int64_t kOpen = INT64_MAX;
  bool contains(int64_t step, int64_t last_step) const;
};

StepSpec parse_step_spec(const std::string& text);  // throws std::invalid_argument

struct LogSelection {
  int64_t digest_every = 1;
  std::vector<StepSpec> full_steps;
  std::vector<std::string> full_tensors;  // globs on tensor names
  bool wants_digest(int64_t step) const { return digest_every > 0 && step % digest_every == 0; }
  bool wants_full(const std::string& name, int64_t ndim, int64_t step, int64_t last_step) const;
};

}  // namespace cliprepro
