// LogWriter::write(): the training thread's half of logging. It digests every selected tensor,
// computes its statistics and copies what is stored in full, then queues the step for the
// writer thread (log_writer.cpp), waiting while the queue is over its bound.
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stdexcept>

#include "harness/log/device_digest.h"
#include "harness/log/digest.h"
#include "harness/log/digest_stats.h"
#include "harness/log/log_writer_batch.h"
#include "harness/log/tensor_stats.h"

namespace cliprepro {

void LogWriter::write(const StepRecord& record) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  auto batch = std::make_unique<StepBatch>();
  batch->step = record.step;
  const bool digest_step = selection_.wants_digest(record.step);
  std::vector<torch::Tensor> views;
  std::vector<bool> full;
  int32_t order = -1;
  for (const auto& t : record.tensors) {
    ++order;
    const bool f = t.tensor.numel() > 0 &&
                   selection_.wants_full(t.name, t.tensor.dim(), record.step, last_step_);
    // A tensor not logged at this step is still declared the first time it is seen, so that
    // every group exists before SWMR starts (no new objects may appear after that), whatever
    // step digest-every first logs it at.
    const bool declare_only = !digest_step && !f;
    if (declare_only && declared_.contains(t.name)) continue;
    declared_.insert(t.name);
    torch::Tensor x = t.tensor.detach();
    if (selection_.activation_samples > 0 && x.dim() > 0 &&
        t.name.starts_with(family::kActivations)) {
      x = x.slice(0, 0, std::min<int64_t>(selection_.activation_samples, x.size(0)));
    }
    Row row;
    row.name = t.name;
    row.phase = t.phase;
    row.dtype = x.scalar_type();
    row.shape.assign(x.sizes().begin(), x.sizes().end());
    row.order = order;
    row.may_full = selection_.may_want_full(t.name, x.dim());
    if (declare_only) {
      batch->declarations.push_back(std::move(row));
      continue;
    }
    batch->rows.push_back(std::move(row));
    views.push_back(x);
    full.push_back(f);
  }
  // Every tensor has appeared by the first training step (step 1, or the one after a resumed
  // run's checkpoint): a glob that matches none of them is likely a mistake.
  if (first_record_step_ < 0) first_record_step_ = record.step;
  if (!globs_checked_ && record.step > first_record_step_) {
    globs_checked_ = true;
    if (const auto w = selection_.unmatched_globs_warning(declared_); !w.empty())
      std::fprintf(stderr, "warning: %s\n", w.c_str());
  }
  // Digests and statistics of all tensors on the intra-op threads (idle between steps), one
  // bin of about equal bytes per thread. Each row is written by one thread only.
  const bool stats = selection_.stats;
  std::vector<size_t> bytes;
  for (const auto& v : views) bytes.push_back(v.nbytes());
  const auto bins = balanced_bins(bytes, at::get_num_threads());
  at::parallel_for(0, int64_t(bins.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      for (size_t i : bins[size_t(b)]) {
        Row& row = batch->rows[i];
        const auto& x = views[i];
        if (x.is_cpu()) {
          auto host = x.contiguous();                     // no copy when already contiguous
          const auto ds = digest_and_stats(host, stats);  // one pass over the bytes
          row.digest = ds.digest;
          row.stats = ds.stats.as_array();
          // The live tensor changes next step: keep a copy for the writer thread.
          if (full[i]) row.full = host.data_ptr() == x.data_ptr() ? host.clone() : host;
        } else {
          // Digest and statistics on the device; only a stored tensor comes to the host whole.
          if (full[i]) {
            row.full = host_contiguous(x);
            row.digest = bytes_digest(row.full.data_ptr(), row.full.nbytes());
          } else {
            row.digest = device_digest(x);
          }
          if (stats) row.stats = tensor_stats(x).as_array();
        }
      }
    }
  });
  for (const auto& row : batch->rows)
    batch->bytes += sizeof(Row) + (row.full.defined() ? row.full.nbytes() : 0);
  const auto t1 = Clock::now();
  std::unique_lock lock(mu_);
  rethrow_if_failed();
  if (closing_) throw std::runtime_error("log writer is closed");
  const size_t limit = size_t(std::max<int64_t>(selection_.queue_mib, 1)) << 20;
  // Back-pressure: wait while the queue is over its bound (an oversized step waits for empty).
  const auto has_room = [&] {
    return error_ || queue_.empty() || queued_bytes_ + batch->bytes <= limit;
  };
  if (!has_room()) ++times_.waited_steps;
  cv_.wait(lock, has_room);
  rethrow_if_failed();
  times_.hash_s += std::chrono::duration<double>(t1 - t0).count();
  times_.wait_s += std::chrono::duration<double>(Clock::now() - t1).count();
  queued_bytes_ += batch->bytes;
  queue_.push_back(std::move(batch));
  cv_.notify_all();
}

}  // namespace cliprepro
