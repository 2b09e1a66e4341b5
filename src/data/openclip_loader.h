// OpenCLIP 3.3.0's csv training loader, draw for draw (scenario `seeding = "openclip"`):
// open_clip_train/data.py get_csv_dataset's DataLoader(shuffle, drop_last, num_workers) after
// main.py's random_seed(seed, rank). What it reproduces, from torch 2.11's torch/utils/data:
// - each epoch's iterator first draws base_seed = int64 random_() from the main generator;
// - the order: world size 1, RandomSampler, which draws its own seed next from the main
//   generator and takes randperm(n) from a generator seeded with it; under torchrun,
//   DistributedSampler(seed 0): randperm(n) seeded 0 + epoch, padded to a multiple of the world
//   size, rank r taking every world-size-th index from r;
// - batches of batch-size from that order, the incomplete last one dropped;
// - the crops (RandomResizedCrop's draws): `workers = 0` from the main generator, sample after
//   sample; `workers = N` batch i of an epoch goes to worker i % N, whose generator is seeded
//   base_seed + worker id at the epoch's start and draws for its batches in order;
// - rank 0's zero-shot DataLoader, iterated after each evaluated epoch, draws one base_seed
//   from the main generator too (only affects later epochs).
// Workers run on threads here, PyTorch's prefetch bound (2 batches per worker) holding them back.
#pragma once
#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "src/data/real_data.h"

namespace cliprepro {

struct OpenClipLoaderOptions {
  int64_t batch_size = 1;
  int rank = 0, world_size = 1;
  int workers = 0;
  uint64_t seed = 0;    // --seed: the main generator is seeded seed + rank
  bool pinned = false;  // images in page-locked memory (CUDA copies)
  // Whether OpenCLIP's zero-shot runs after `epoch` (1-based, just completed) on this rank.
  std::function<bool(int64_t epoch)> evaluates_after;
};

class OpenClipLoader {
 public:
  // Micro-batches [0, end) of `data`; the workers start at once.
  OpenClipLoader(const RealData& data, OpenClipLoaderOptions options, int64_t end);
  ~OpenClipLoader();  // stops the workers after their current sample
  OpenClipLoader(const OpenClipLoader&) = delete;
  OpenClipLoader& operator=(const OpenClipLoader&) = delete;

  // Micro-batch m (asked in order from 0, as OpenCLIP's loop does); a sample's error, naming
  // its file, is rethrown here.
  Batch get(int64_t m);

  // len(DataLoader) on one rank for n samples: OpenCLIP's batches per epoch.
  static int64_t batches_per_epoch(int64_t n, int64_t batch_size, int world_size);

 private:
  struct Epoch {
    int64_t index = 0;
    uint64_t base_seed = 0;
    std::vector<int64_t> order;  // this rank's sample ids, in the sampler's order
  };
  struct Made {
    Batch batch;
    std::exception_ptr error;
  };
  std::shared_ptr<const Epoch> epoch(int64_t e);  // under mu_ when workers > 0
  std::vector<int64_t> ids_of(const Epoch& e, int64_t i) const;
  Batch make(const Epoch& e, int64_t i, at::Generator& gen) const;
  void work(int w);

  const RealData& data_;
  const OpenClipLoaderOptions o_;
  const int64_t end_, per_epoch_;
  at::Generator main_;                                      // the main process's default generator
  std::map<int64_t, std::shared_ptr<const Epoch>> epochs_;  // planned, not yet consumed
  int64_t planned_ = 0;                                     // epochs planned so far
  int64_t next_ = 0;                                        // the next micro-batch get() returns
  std::mutex mu_;
  std::condition_variable made_cv_, taken_cv_;
  std::map<int64_t, Made> made_;
  std::atomic<bool> stop_{false};  // read between samples
  std::vector<std::thread> threads_;
};

}  // namespace cliprepro
