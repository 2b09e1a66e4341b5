#include "harness/log/log_writer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <stdexcept>

#include "harness/log/h5_extendible.h"
#include "harness/log/log_writer_batch.h"

namespace cliprepro {
namespace {

constexpr hsize_t kSeriesChunk = 256;   // rows per chunk of full_steps and of 0-d fulls
constexpr hsize_t kDigestChunk = 4096;  // rows per chunk of /digests (~400 KiB)

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

}  // namespace

struct LogWriter::Series {
  H5Id group, full_steps, full;
  H5Id type;  // HDF5 type of the tensor's dtype
  std::vector<hsize_t> shape;
  int32_t index = 0;   // its `series` number in /digests
  hsize_t n_full = 0;  // full rows on disk
  std::vector<int64_t> pending_full_steps;
  std::vector<torch::Tensor> pending_full;  // owned contiguous CPU copies, one per row
};

LogWriter::LogWriter(const std::filesystem::path& path, LogSelection selection, int64_t last_step,
                     const nlohmann::json& provenance, WriteMode mode)
    : path_(path), selection_(std::move(selection)), last_step_(last_step), mode_(mode) {
  h5_quiet();
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  // 1.10 file format: compact chunk indexes instead of a B-tree per dataset, and SWMR.
  H5Id fapl = h5_check(H5Pcreate(H5P_FILE_ACCESS), "fapl");
  h5_check_status(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST),
                  "libver bounds");
  // Links and attributes in checksummed object headers (h5_compact_storage): a damaged log is
  // an error for its readers, never a crash inside libhdf5.
  const H5Id fcpl = h5_compact_storage(H5P_FILE_CREATE);
  file_ = h5_check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()),
                   "cannot create log file " + path.string());
  const hid_t root = file_.get();
  h5_write_string_attr(root, "format", "cliprepro-log");
  h5_write_string_attr(root, "format_version", std::to_string(kLogFormatVersion));
  h5_write_string_attr(root, "status", "running");
  h5_write_string_attr(root, "stats_columns", "min,max,mean,std,l2,nan,inf,zero");
  for (const auto& [key, value] : provenance.items()) {
    h5_write_string_attr(root, key, value.is_string() ? value.get<std::string>() : value.dump(2));
  }
  h5_create_groups(root, "/tensors");
  {
    H5Id file_type = digest_row_file_type(selection_.stats);
    digests_ = create_extendible(root, kDigestTable, file_type.get(), {}, kDigestChunk,
                                 mode == WriteMode::kBuffered);
    digest_mem_type_ = digest_row_mem_type(selection_.stats);
  }
  hsize_t two = 2;
  H5Id space = h5_check(H5Screate_simple(1, &two, nullptr), "space");
  progress_ = h5_check(H5Dcreate2(root, "progress", H5T_STD_I64LE, space.get(), H5P_DEFAULT,
                                  H5P_DEFAULT, H5P_DEFAULT),
                       "create /progress");
  write_progress();
  thread_ = std::thread([this] { writer_loop(); });
}

const char* log_end_status(LogEnd end) {
  switch (end) {
    case LogEnd::kComplete:
      return "complete";
    case LogEnd::kFailed:
      return "failed";
    case LogEnd::kInterrupted:
      return "interrupted";
  }
  return "?";
}

LogWriter::~LogWriter() {
  try {
    // Reached without close() only when the run left by an exception nobody named.
    close(LogEnd::kFailed, "the run ended without closing its log");
  } catch (...) {
    // Destructors must not throw; close() explicitly to see errors.
  }
}

void LogWriter::rethrow_if_failed() {
  if (error_) std::rethrow_exception(error_);
}

void LogWriter::sync() {
  std::unique_lock lock(mu_);
  // queued_bytes_ drops to 0 once every queued step is on disk (streaming) or in memory
  // (buffered); the writer flushes within flush-seconds.
  cv_.wait(lock, [&] { return error_ || (queue_.empty() && queued_bytes_ == 0); });
  rethrow_if_failed();
}

void LogWriter::writer_loop() {
  h5_quiet();  // HDF5's error printing is per thread: errors are reported by our exceptions
  using Clock = std::chrono::steady_clock;
  const auto interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(std::max(0.0, selection_.flush_seconds)));
  const size_t limit = size_t(std::max<int64_t>(selection_.queue_mib, 1)) << 20;
  auto last_flush = Clock::now();
  size_t unflushed = 0;  // bytes written to pending rows but not yet to disk
  for (;;) {
    std::deque<std::unique_ptr<StepBatch>> batches;
    bool closing = false;
    {
      std::unique_lock lock(mu_);
      auto ready = [&] { return closing_ || !queue_.empty(); };
      if (unflushed > 0 && mode_ == WriteMode::kStreaming) {
        cv_.wait_until(lock, last_flush + interval, ready);
      } else {
        cv_.wait(lock, ready);
      }
      batches.swap(queue_);  // take everything queued
      closing = closing_;
    }
    const auto io_start = Clock::now();
    const double cpu_start = thread_cpu_seconds();
    try {
      for (auto& b : batches) {
        write_batch(*b);
        unflushed += b->bytes;
      }
      if (mode_ == WriteMode::kBuffered && unflushed > 0) {
        // Buffered logs hold every row until close by design: nothing to wait for.
        std::lock_guard lock(mu_);
        queued_bytes_ -= unflushed;
        unflushed = 0;
        cv_.notify_all();
      }
      // Flush at most every flush-seconds (HDF5's per-dataset cost is per flush, not per
      // step), sooner when the queue bound is half used, and always at the end.
      const bool due = Clock::now() >= last_flush + interval || unflushed > limit / 2;
      if (mode_ == WriteMode::kStreaming && unflushed > 0 && (due || closing)) {
        flush_to_disk();
        last_flush = Clock::now();
        std::lock_guard lock(mu_);
        queued_bytes_ -= unflushed;  // released once on disk: pending rows count against the bound
        unflushed = 0;
        cv_.notify_all();
      }
    } catch (...) {
      std::lock_guard lock(mu_);
      error_ = write_failure();
      queue_.clear();
      queued_bytes_ = 0;
      cv_.notify_all();
      return;
    }
    {
      std::lock_guard lock(mu_);
      times_.io_s += std::chrono::duration<double>(Clock::now() - io_start).count();
      times_.io_cpu_s += thread_cpu_seconds() - cpu_start;
    }
    if (closing && batches.empty()) return;
  }
}

LogWriter::Series& LogWriter::series_for(const Row& row) {
  auto it = series_.find(row.name);
  if (it != series_.end()) return *it->second;
  if (swmr_) {
    throw std::runtime_error(
        "tensor " + row.name +
        " first appeared after the first training step; a log's tensors must all appear by then");
  }
  auto s = std::make_unique<Series>();
  const std::string gpath = "/tensors/" + row.name;
  h5_create_groups(file_.get(), gpath);
  s->group = h5_check(H5Gopen2(file_.get(), gpath.c_str(), H5P_DEFAULT), "open group " + gpath);
  h5_write_string_attr(s->group.get(), "dtype", dtype_name(row.dtype));
  h5_write_string_attr(s->group.get(), "phase", phase_name(row.phase));
  h5_write_i64_array_attr(s->group.get(), "shape",
                          std::vector<int64_t>(row.shape.begin(), row.shape.end()));
  s->index = int32_t(series_.size());
  h5_write_i64_attr(s->group.get(), "series", s->index);
  s->shape = row.shape;
  s->type = h5_type_for(row.dtype);
  const bool z = mode_ == WriteMode::kBuffered;
  if (row.may_full) {  // created up front: no new objects may appear once SWMR has started
    s->full_steps =
        create_extendible(s->group.get(), "full_steps", H5T_STD_I64LE, {}, kSeriesChunk, z);
    const bool scalar = s->shape.empty();
    s->full = create_extendible(s->group.get(), "full", s->type.get(), s->shape,
                                scalar ? kSeriesChunk : 1,
                                z || (selection_.compression == Compression::kGzip && !scalar));
    if (row.dtype == torch::kBFloat16) h5_write_string_attr(s->full.get(), "dtype", "bfloat16");
  }
  return *series_.emplace(row.name, std::move(s)).first->second;
}

void LogWriter::check_shape(const Series& s, const Row& row, int64_t step) {
  if (row.shape != s.shape) {
    throw std::runtime_error("tensor " + row.name + " changed shape at step " +
                             std::to_string(step));
  }
}

void LogWriter::write_batch(StepBatch& batch) {
  // Groups are created in execution order (both lists are in it), logged or declared alike.
  auto decl = batch.declarations.begin();
  auto declare_before = [&](int32_t order) {
    for (; decl != batch.declarations.end() && decl->order < order; ++decl)
      check_shape(series_for(*decl), *decl, batch.step);
  };
  for (auto& row : batch.rows) {
    declare_before(row.order);
    Series& s = series_for(row);
    check_shape(s, row, batch.step);
    pending_rows_.push_back(DigestRow{batch.step, s.index, row.order, row.digest, row.stats});
    if (row.full.defined()) {
      if (!s.full.valid()) throw std::runtime_error("internal: no full dataset for " + row.name);
      s.pending_full_steps.push_back(batch.step);
      s.pending_full.push_back(std::move(row.full));
    }
  }
  declare_before(std::numeric_limits<int32_t>::max());
  if (first_written_ < 0) first_written_ = batch.step;
  last_written_ = batch.step;
}

// [last complete step, /digests rows that hold it] in one 16-byte write: a reader trusts
// exactly those rows, whatever a failed or killed flush left past them.
void LogWriter::write_progress() {
  const int64_t progress[2] = {last_written_, int64_t(n_digest_rows_)};
  h5_check_status(
      H5Dwrite(progress_.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, progress),
      "write /progress");
}

void LogWriter::flush_to_disk() {
  flush_rows();
  // The rows reach the disk before /progress claims them: when the disk fills (or the process
  // dies) in between, /progress still names the last step truly written.
  h5_check_status(H5Fflush(file_.get(), H5F_SCOPE_GLOBAL), "flush");
  write_progress();
  h5_check_status(H5Fflush(file_.get(), H5F_SCOPE_GLOBAL), "flush /progress");
  on_disk_ = last_written_;
  // From the first training step on (step 1, or the one after a resumed run's checkpoint step)
  // every tensor exists: switch to SWMR so a crash cannot corrupt the file.
  if (!swmr_ && last_written_ > first_written_) {
    h5_check_status(H5Fstart_swmr_write(file_.get()), "start SWMR write on " + path_.string());
    swmr_ = true;
  }
}

void LogWriter::flush_rows() {
  if (!pending_rows_.empty()) {
    // Every tensor's digest row of every pending step in one append.
    const hsize_t k = pending_rows_.size();
    append_rows(digests_.get(), digest_mem_type_.get(), pending_rows_.data(), n_digest_rows_, k,
                {});
    n_digest_rows_ += k;
    pending_rows_.clear();
  }
  for (auto& [name, sp] : series_) {
    Series& s = *sp;
    const hsize_t kf = s.pending_full_steps.size();
    if (kf > 0) {
      // Memory type = file type: the raw bits go to disk unconverted. Small rows (scalars) are
      // gathered into one write; large rows are written straight from their copies.
      if (s.shape.empty()) {
        auto rows = torch::stack(s.pending_full);
        append_rows(s.full.get(), s.type.get(), rows.data_ptr(), s.n_full, kf, s.shape);
      } else {
        for (hsize_t i = 0; i < kf; ++i) {
          append_rows(s.full.get(), s.type.get(), s.pending_full[i].data_ptr(), s.n_full + i, 1,
                      s.shape);
        }
      }
      append_rows(s.full_steps.get(), H5T_NATIVE_INT64, s.pending_full_steps.data(), s.n_full, kf,
                  {});
      s.n_full += kf;
      s.pending_full_steps.clear();
      s.pending_full.clear();
    }
  }
}

// The exception being handled, as the error of writing this log: which file, and what of it is
// good (the operating system's reason, e.g. "No space left on device", comes with HDF5's).
std::exception_ptr LogWriter::write_failure() const {
  try {
    throw;
  } catch (const std::exception& e) {
    return std::make_exception_ptr(std::runtime_error("cannot write the log " + path_.string() +
                                                      " (it holds the steps up to " +
                                                      std::to_string(on_disk_) + "): " + e.what()));
  } catch (...) {
    return std::current_exception();
  }
}

void LogWriter::close(LogEnd end, const std::string& reason) {
  if (closed_) return;
  closed_ = true;
  {
    std::lock_guard lock(mu_);
    closing_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  if (!error_) {  // after a writer error the pending rows may be what failed: leave them
    try {
      flush_rows();
      h5_check_status(H5Fflush(file_.get(), H5F_SCOPE_GLOBAL), "flush");
      write_progress();
      on_disk_ = last_written_;
    } catch (...) {
      error_ = write_failure();
    }
  }
  series_.clear();
  digests_.reset();
  progress_.reset();
  file_.reset();
  // After a write error (a full disk) reopening for writing would only flag the file as open
  // for non-SWMR writing, and the mark would not reach the disk anyway: the file stays as SWMR
  // left it, readable up to /progress, and the error goes to the caller.
  if (error_) {
    if (end == LogEnd::kComplete) std::rethrow_exception(error_);
    return;
  }
  try {
    // Attributes cannot change under SWMR: reopen to mark how the log ended.
    H5Id f = h5_check(H5Fopen(path_.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), "reopen");
    h5_write_string_attr(f.get(), "last_step", std::to_string(on_disk_));
    h5_write_string_attr(f.get(), "status", log_end_status(end));
    if (end != LogEnd::kComplete) h5_write_string_attr(f.get(), "failure", reason);
    if (mode_ == WriteMode::kStreaming) {  // a timing: never in a golden (kBuffered)
      const nlohmann::json wait = {{"seconds", std::round(times_.wait_s * 1e6) / 1e6},
                                   {"steps", times_.waited_steps},
                                   {"queue_mib", selection_.queue_mib}};
      h5_write_string_attr(f.get(), "writer_wait", wait.dump());
    }
    h5_check_status(f.close(), "close");
  } catch (...) {
    std::rethrow_exception(write_failure());
  }
}

}  // namespace cliprepro
