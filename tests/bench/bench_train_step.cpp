// One training step of the tiny config (fp32, CPU); items/s = images per second.
// Arguments: batch size, and whether every tensor is captured (what logging sees; no writer).
// Run: build/tests/bench/bench_train_step [--benchmark_repetitions=5]
#include <benchmark/benchmark.h>

#include "src/train/determinism.h"
#include "src/train/trainer.h"
#include "tests/bench/bench_config.h"

namespace {

void BM_TrainStepTiny(benchmark::State& state) {
  const int64_t batch = state.range(0);
  const bool captured = state.range(1) != 0;
  auto cfg = cliprepro::bench_train_config("tiny", batch);
  cliprepro::apply_determinism(cfg.determinism, uint64_t(cfg.seed));
  cliprepro::Trainer trainer(cfg);
  int64_t b = 0;
  for (auto _ : state) {
    cliprepro::StepRecord rec;
    benchmark::DoNotOptimize(
        trainer.train_step(b++ % trainer.total_steps(), captured ? &rec : nullptr));
  }
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_TrainStepTiny)
    ->ArgNames({"batch", "captured"})
    ->Args({32, 0})
    ->Args({32, 1})
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
