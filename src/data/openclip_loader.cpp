#include "src/data/openclip_loader.h"

#include <ATen/CPUGeneratorImpl.h>

#include <stdexcept>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace cliprepro {
namespace {

// torch.empty((), dtype=torch.int64).random_(generator): a base seed or RandomSampler's seed.
int64_t draw_loader_seed(at::Generator& gen) {
  return torch::empty({}, torch::kInt64).random_(gen).item<int64_t>();
}

// torch.Generator().manual_seed(seed) (the same engine state as torch.manual_seed(seed)).
at::Generator seeded_generator(uint64_t seed) {
  return at::make_generator<at::CPUGeneratorImpl>(seed);
}

std::vector<int64_t> permutation_of(int64_t n, uint64_t seed) {
  auto gen = seeded_generator(seed);
  const auto p = torch::randperm(n, gen, torch::kInt64);
  return {p.data_ptr<int64_t>(), p.data_ptr<int64_t>() + n};
}

}  // namespace

int64_t OpenClipLoader::batches_per_epoch(int64_t n, int64_t batch_size, int world_size) {
  const int64_t per_rank = (n + world_size - 1) / world_size;  // DistributedSampler pads
  return (world_size == 1 ? n : per_rank) / batch_size;
}

OpenClipLoader::OpenClipLoader(const RealData& data, OpenClipLoaderOptions options, int64_t end)
    : data_(data),
      o_(std::move(options)),
      end_(end),
      per_epoch_(batches_per_epoch(data.size(), o_.batch_size, o_.world_size)),
      main_(seeded_generator(o_.seed + uint64_t(o_.rank))) {
  if (per_epoch_ < 1) throw std::runtime_error("OpenCLIP's loader: no full batch in an epoch");
  for (int w = 0; w < o_.workers; ++w) threads_.emplace_back([this, w] { work(w); });
}

OpenClipLoader::~OpenClipLoader() {
  {
    std::lock_guard<std::mutex> lock(mu_);  // so no worker misses the notification
    stop_ = true;
  }
  taken_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

std::shared_ptr<const OpenClipLoader::Epoch> OpenClipLoader::epoch(int64_t e) {
  if (auto it = epochs_.find(e); it != epochs_.end()) return it->second;
  // The main generator's draws happen in epoch order; epochs are planned in that order.
  if (e < planned_) throw std::logic_error("OpenCLIP's loader: a consumed epoch asked again");
  for (int64_t k = planned_; k <= e; ++k, ++planned_) {
    // After epoch k's predecessor, OpenCLIP's evaluation iterates its own DataLoader: one draw.
    if (k > 0 && o_.evaluates_after && o_.evaluates_after(k)) draw_loader_seed(main_);
    auto ep = std::make_shared<Epoch>();
    ep->index = k;
    ep->base_seed = uint64_t(draw_loader_seed(main_));  // _BaseDataLoaderIter.__init__
    const int64_t n = data_.size();
    if (o_.world_size == 1) {
      ep->order = permutation_of(n, uint64_t(draw_loader_seed(main_)));  // RandomSampler.__iter__
    } else {
      auto all = permutation_of(n, uint64_t(k));  // DistributedSampler: seed 0 + epoch
      const int64_t total = (n + o_.world_size - 1) / o_.world_size * o_.world_size;
      for (int64_t i = n; i < total; ++i) all.push_back(all[size_t(i % n)]);
      for (int64_t i = o_.rank; i < total; i += o_.world_size) ep->order.push_back(all[size_t(i)]);
    }
    epochs_[k] = ep;
  }
  return epochs_[e];
}

std::vector<int64_t> OpenClipLoader::ids_of(const Epoch& e, int64_t i) const {
  const auto begin = e.order.begin() + i * o_.batch_size;
  return {begin, begin + o_.batch_size};
}

Batch OpenClipLoader::make(const Epoch& e, int64_t i, at::Generator& gen) const {
  Batch b = data_.empty_batch(ids_of(e, i), o_.pinned);
  const auto* sid = b.sample_ids.data_ptr<int64_t>();
  for (int64_t j = 0; j < b.sample_ids.numel(); ++j) {  // dataset[idx] one after the other
    if (stop_) break;
    b.captions[size_t(j)] = data_.load_sample(sid[j], gen, b.images[j]);
  }
  return b;
}

void OpenClipLoader::work(int w) {
#ifdef _OPENMP
  omp_set_num_threads(1);  // ATen ops inside a sample run serially: the workers are the parallelism
#endif
  for (int64_t e = 0; e * per_epoch_ < end_; ++e) {
    std::shared_ptr<const Epoch> ep;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ep = epoch(e);
    }
    auto gen = seeded_generator(ep->base_seed + uint64_t(w));  // _worker_loop: torch.manual_seed
    for (int64_t i = w; i < per_epoch_ && e * per_epoch_ + i < end_; i += o_.workers) {
      const int64_t m = e * per_epoch_ + i;
      {
        std::unique_lock<std::mutex> lock(mu_);
        // PyTorch keeps prefetch_factor (2) batches per worker in flight.
        taken_cv_.wait(lock, [&] { return stop_ || m < next_ + 2 * o_.workers; });
        if (stop_) return;
      }
      Made made;
      try {
        made.batch = make(*ep, i, gen);
      } catch (...) {
        made.error = std::current_exception();
      }
      const bool failed = made.error != nullptr;
      {
        std::lock_guard<std::mutex> lock(mu_);
        made_.emplace(m, std::move(made));
      }
      made_cv_.notify_all();
      if (failed) return;  // the run stops at this batch
    }
  }
}

Batch OpenClipLoader::get(int64_t m) {
  if (m != next_) {
    throw std::runtime_error(
        "seeding = \"openclip\": OpenCLIP's loader runs its batches in order from the first, "
        "so a run cannot start at micro-batch " +
        std::to_string(m) + " (resume and bisect re-runs need seeding = \"cliprepro\")");
  }
  if (m >= end_) throw std::out_of_range("micro-batch " + std::to_string(m) + " past the end");
  Batch b;
  std::exception_ptr error;
  if (o_.workers == 0) {
    b = make(*epoch(m / per_epoch_), m % per_epoch_, main_);
  } else {
    std::unique_lock<std::mutex> lock(mu_);
    made_cv_.wait(lock, [&] { return made_.count(m) > 0; });
    error = made_[m].error;
    b = std::move(made_[m].batch);
    made_.erase(m);
  }
  {
    // Taken: a worker may make one more batch, and plans of epochs behind this one are done.
    std::lock_guard<std::mutex> lock(mu_);
    ++next_;
    epochs_.erase(epochs_.begin(), epochs_.lower_bound(m / per_epoch_));
  }
  taken_cv_.notify_all();
  if (error) std::rethrow_exception(error);
  data_.finish_batch(b);
  return b;
}

}  // namespace cliprepro
