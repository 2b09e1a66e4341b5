// What portable mode costs ([determinism] portable, docs/compare.md): one training step with
// cliprepro's portable CPU kernels against LibTorch's own, both under portable's pins (oneDNN and
// ATen at AVX2, MKL_CBWR=AVX2,STRICT: set before the first kernel, so one binary runs both), fp32,
// 2 threads, no logging. Interleave the repetitions so both see the same machine:
//   build/tests/bench/bench_portable --benchmark_repetitions=3
//     --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include "src/train/determinism.h"
#include "src/train/trainer.h"
#include "tests/bench/bench_config.h"

namespace {

void BM_PortableStep(benchmark::State& state) {
  const std::string model = state.range(0) == 0 ? "tiny" : "RN50";
  const int64_t batch = state.range(1);
  auto cfg = cliprepro::bench_train_config(model, batch);
  cfg.determinism.portable = state.range(2) != 0;
  cliprepro::apply_determinism(cfg.determinism, uint64_t(cfg.seed));
  cliprepro::Trainer trainer(cfg);
  trainer.train_step(0, nullptr);  // first-touch and kernel set-up outside the timing
  int64_t b = 1;
  for (auto _ : state) benchmark::DoNotOptimize(trainer.train_step(b++, nullptr));
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetLabel(cfg.determinism.portable ? "portable kernels" : "LibTorch's kernels");
}
BENCHMARK(BM_PortableStep)
    ->ArgNames({"rn50", "batch", "portable"})
    ->Args({0, 32, 0})
    ->Args({0, 32, 1})
    ->Args({1, 8, 0})
    ->Args({1, 8, 1})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);

}  // namespace

int main(int argc, char** argv) {
  cliprepro::apply_process_environment(cliprepro::DeterminismConfig{});  // portable's pins
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
