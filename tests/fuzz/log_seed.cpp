// Writes the log fuzzer's seeds: two tiny logs (streamed and buffered) in today's layout, with
// digests, statistics and full tensors of several dtypes, so mutations start from valid files.
//
//   fuzz_log_seed DIR
#include <torch/torch.h>

#include <filesystem>
#include <iostream>

#include "harness/log/log_writer.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_log_seed DIR\n";
    return 2;
  }
  using namespace cliprepro;
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  LogSelection sel;
  sel.full_steps = {parse_step_spec("0:")};
  sel.full_tensors = {"params/*", "scalars/*"};
  for (const auto mode : {WriteMode::kStreaming, WriteMode::kBuffered}) {
    const auto path = dir / (mode == WriteMode::kStreaming ? "streamed.h5" : "buffered.h5");
    LogWriter w(path, sel, 2, {{"scenario_name", "seed"}, {"resolved_config", {{"lr", 1e-3}}}},
                mode);
    for (int64_t step = 0; step <= 2; ++step) {
      StepRecord rec;
      rec.step = step;
      rec.tensors.push_back({"params/w", Phase::kOptimizer, torch::full({2, 3}, float(step))});
      rec.tensors.push_back(
          {"params/h", Phase::kOptimizer, torch::full({4}, double(step)).to(torch::kBFloat16)});
      rec.tensors.push_back({"grads/w", Phase::kBackward, torch::full({2, 3}, float(-step))});
      rec.tensors.push_back({"scalars/loss", Phase::kForward, torch::tensor(float(step))});
      w.write(rec);
    }
    w.close();
  }
  return 0;
}
