// One training step of the tiny config (fp32, CPU); items/s = images per second.
// Run: build/tests/bench/bench_train_step [--benchmark_repetitions=5]
#include <benchmark/benchmark.h>

#include "src/train/determinism.h"
#include "src/train/trainer.h"

namespace {

cliprepro::TrainConfig tiny_config(int64_t batch) {
  cliprepro::TrainConfig c;
  c.model = "tiny";
  c.batch_size = batch;
  c.train_num_samples = batch * 64;
  c.val_num_samples = 16;
  c.epochs = 1;
  c.warmup = 4;
  c.lr = 1e-3;
  c.zeroshot_frequency = 0;
  c.determinism.threads = 2;
  return c;
}

void BM_TrainStepTiny(benchmark::State& state) {
  const int64_t batch = state.range(0);
  auto cfg = tiny_config(batch);
  cliprepro::apply_determinism(cfg.determinism, uint64_t(cfg.seed));
  cliprepro::Trainer trainer(cfg);
  int64_t b = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(trainer.train_step(b++ % trainer.total_steps(), nullptr));
  }
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_TrainStepTiny)->Arg(32)->Unit(benchmark::kMillisecond);

// The same step with every tensor captured (what logging sees), without the HDF5 writer.
void BM_TrainStepTinyCaptured(benchmark::State& state) {
  const int64_t batch = state.range(0);
  auto cfg = tiny_config(batch);
  cliprepro::apply_determinism(cfg.determinism, uint64_t(cfg.seed));
  cliprepro::Trainer trainer(cfg);
  int64_t b = 0;
  for (auto _ : state) {
    cliprepro::StepRecord rec;
    benchmark::DoNotOptimize(trainer.train_step(b++ % trainer.total_steps(), &rec));
  }
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_TrainStepTinyCaptured)->Arg(32)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
