// Training configuration shared by the benchmarks: synthetic data, no zero-shot eval, 2 threads.
#pragma once
#include "src/train/train_config.h"

namespace cliprepro {

inline TrainConfig bench_train_config(const std::string& model, int64_t batch) {
  TrainConfig c;
  c.model = model;
  c.batch_size = batch;
  c.train_num_samples = batch * 64;
  c.val_num_samples = 16;
  c.steps = 1000;
  c.warmup = 4;
  c.lr = 1e-4;
  c.zeroshot_frequency = 0;
  c.determinism.threads = 2;
  return c;
}

}  // namespace cliprepro
