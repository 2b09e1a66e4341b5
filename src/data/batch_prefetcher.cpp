#include "src/data/batch_prefetcher.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace cliprepro {

BatchPrefetcher::BatchPrefetcher(const RealData& data, Planner plan, int64_t end, int workers,
                                 int64_t ahead, bool pinned)
    : data_(data),
      plan_(std::move(plan)),
      end_(end),
      ahead_(std::max<int64_t>(ahead, 1)),
      pinned_(pinned) {
  for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
}

BatchPrefetcher::~BatchPrefetcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void BatchPrefetcher::schedule_through(int64_t last) {
  for (; next_ <= last && next_ < end_; ++next_) {
    auto slot = std::make_shared<Slot>();
    Plan p = plan_(next_);
    slot->m = next_;
    slot->epoch = p.epoch;
    slot->batch = data_.empty_batch(p.ids, pinned_);
    slots_.push_back(std::move(slot));
  }
  work_cv_.notify_all();
}

void BatchPrefetcher::drop_slots(std::unique_lock<std::mutex>& lock) {
  for (auto& s : slots_) s->dropped = true;  // nothing new is taken from them...
  // ...and the samples in flight finish into their (shared) slots before these are let go.
  done_cv_.wait(lock, [&] {
    for (const auto& s : slots_)
      if (s->finished < s->taken) return false;
    return true;
  });
  slots_.clear();
}

void BatchPrefetcher::work() {
#ifdef _OPENMP
  omp_set_num_threads(1);  // ATen ops inside a sample run serially: the pool is the parallelism
#endif
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    std::shared_ptr<Slot> slot;
    work_cv_.wait(lock, [&] {
      if (stop_) return true;
      for (const auto& s : slots_) {
        if (!s->error && !s->dropped && s->taken < s->batch.sample_ids.numel()) {
          slot = s;  // the oldest batch first: it is the one the trainer waits for
          return true;
        }
      }
      return false;
    });
    if (stop_) return;
    const int64_t i = slot->taken++;
    const int64_t id = slot->batch.sample_ids.data_ptr<int64_t>()[i];
    lock.unlock();
    std::string caption;
    std::exception_ptr error;
    try {
      caption = data_.load_sample(id, slot->epoch, slot->batch.images[i]);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    if (error && !slot->error) slot->error = error;
    if (!error) slot->batch.captions[size_t(i)] = std::move(caption);
    ++slot->finished;
    if (slot->complete()) done_cv_.notify_all();
  }
}

Batch BatchPrefetcher::get(int64_t m) {
  std::shared_ptr<Slot> slot;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (slots_.empty() || slots_.front()->m != m) {
      drop_slots(lock);
      next_ = m;
    }
    schedule_through(m + ahead_);
    if (slots_.empty())
      throw std::out_of_range("micro-batch " + std::to_string(m) + " past the end");
    slot = slots_.front();
    done_cv_.wait(lock, [&] { return slot->complete(); });
    slots_.pop_front();
    schedule_through(m + ahead_);
  }
  if (slot->error) std::rethrow_exception(slot->error);
  data_.finish_batch(slot->batch);
  return std::move(slot->batch);
}

}  // namespace cliprepro
