// OpenCLIP's --workers for cliprepro's loader (scenario key `workers`): a pool of threads
// decodes and augments the samples of the next micro-batches while the current step trains, so
// a GPU is not left waiting for the CPU. Bits do not depend on the pool: each sample is made
// from its own generator (RealData::load_sample) into its own slot, whichever thread makes it
// and whenever. Memory is bounded: at most `ahead` batches are made ahead of the one training.
#pragma once
#include <torch/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "src/data/real_data.h"

namespace cliprepro {

// Batches made ahead of the one training (PyTorch's DataLoader keeps prefetch_factor 2 per
// worker; here the workers share each batch's samples, so two batches keep them busy).
inline constexpr int64_t kBatchesAhead = 2;

class BatchPrefetcher {
 public:
  // What micro-batch m holds: dataset positions (RealData ids) and its epoch.
  struct Plan {
    std::vector<int64_t> ids;
    int64_t epoch = 0;
  };
  using Planner = std::function<Plan(int64_t m)>;

  // Micro-batches [0, end) in the order get() asks for them; `pinned`: images in page-locked
  // host memory, so the host-to-device copy can be non-blocking.
  BatchPrefetcher(const RealData& data, Planner plan, int64_t end, int workers, int64_t ahead,
                  bool pinned);
  // Stops the workers after the sample each is making (a failed or interrupted run returns).
  ~BatchPrefetcher();
  BatchPrefetcher(const BatchPrefetcher&) = delete;
  BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

  // Micro-batch m, waiting until it is made; a sample's error (naming its file) is rethrown here,
  // on the training thread. Asked out of order (the first call, a resume), it starts over at m.
  Batch get(int64_t m);

 private:
  struct Slot {
    int64_t m = 0, epoch = 0;
    Batch batch;
    int64_t taken = 0, finished = 0;  // samples handed to a worker / made
    std::exception_ptr error;         // the first sample that failed; no more are taken
    bool dropped = false;             // get() started over elsewhere; no more are taken
    bool complete() const {
      return finished == taken && (error || taken == batch.sample_ids.numel());
    }
  };
  void work();
  void schedule_through(int64_t last);                  // under mu_: slots up to micro-batch `last`
  void drop_slots(std::unique_lock<std::mutex>& lock);  // waits for their samples in flight

  const RealData& data_;
  Planner plan_;
  const int64_t end_, ahead_;
  const bool pinned_;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::deque<std::shared_ptr<Slot>> slots_;  // in micro-batch order
  int64_t next_ = 0;                         // the next micro-batch to schedule
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace cliprepro
