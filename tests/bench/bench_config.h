// Training configuration shared by the benchmarks: synthetic data, no zero-shot eval, 2 threads.
#pragma once
#include "src/train/train_config.h"

namespace cliprepro {

inline TrainConfig bench_train_config(const std::string& model, int64_t batch) {
  TrainConfig c;
  c.model = model;
  c.batch_size = batch;
  c.data.train_num_samples = batch * 64;
  c.data.val_num_samples = 16;
  c.steps = 1000;
  c.optim.warmup = 4;
  c.optim.lr = 1e-4;
  c.eval.zeroshot_frequency = 0;
  c.determinism.threads = 2;
  return c;
}

}  // namespace cliprepro
