// `cliprepro bisect A B`: where two logs first diverge, re-run both from their nearest training
// checkpoint before that step with every tensor stored in full for the steps up to it, and name
// the first differing tensor in execution order, down to the element. Useful when the logs hold
// digests only every N steps, or no full tensors: the re-run supplies the bits.
#pragma once
#include <filesystem>
#include <string>

#include "harness/compare/compare.h"

namespace cliprepro {

struct BisectSide {
  std::filesystem::path log, rerun_log;
  int64_t from_step = 0;             // checkpoint step resumed from (0: from the start)
  std::filesystem::path checkpoint;  // empty: from the start
};

struct BisectResult {
  int64_t divergence_step = -1;  // first differing step in the original logs (-1: they match)
  std::string divergence_tensor;
  BisectSide a, b;
  CompareResult rerun;  // the re-runs, compared through divergence_step
};

// Runs in this process; `work_dir` receives the re-run logs (a/, b/).
BisectResult bisect_logs(const std::filesystem::path& a, const std::filesystem::path& b,
                         const std::filesystem::path& work_dir, const CompareOptions& opts = {});
std::string format_bisect(const BisectResult& r);

}  // namespace cliprepro
