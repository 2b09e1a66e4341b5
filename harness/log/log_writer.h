// Writes one HDF5 log per run: provenance attributes on the root, one /digests table with a row
// per tensor per logged step (digest, statistics, execution order), and for each tensor name a
// group /tensors/<name> with its dtype/shape/phase and any full tensors (docs/hdf5-layout.md).
//
// write() runs on the training thread: it digests every selected tensor, computes its
// statistics and copies the tensors to be stored in full, then hands the step to a background
// thread that does all HDF5 I/O. The queue between them is bounded in bytes: when it is full,
// write() waits (back-pressure), so memory stays bounded.
#pragma once
#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "harness/log/h5_types.h"
#include "harness/log/log_format.h"
#include "harness/log/log_selection.h"
#include "src/log_schema.h"

namespace cliprepro {

// kStreaming: the writer thread writes and flushes whatever steps are queued (each step as soon
// as it keeps up; several at once when it falls behind), in HDF5 SWMR mode from step 1 on, so a
// killed run leaves a file readable up to the last step it flushed. kBuffered: step series stay in
// memory and are written deflated at close() (goldens: written to a temporary file and renamed, so
// compactness matters, not crashes).
enum class WriteMode { kStreaming, kBuffered };

// How a log ends: its `status` attribute. kFailed also records `failure` (the error message);
// both keep every step written before it in the file (`last_step`, /progress).
enum class LogEnd { kComplete, kFailed, kInterrupted };
const char* log_end_status(LogEnd end);  // "complete", "failed", "interrupted"

// Where logging time goes, in seconds: hashing on the training thread (digests, statistics,
// copies of full tensors), waiting there for queue space, and HDF5 work on the writer thread,
// as wall time and as that thread's CPU time (the wall time stretches when it shares a core).
struct LogWriterTimes {
  double hash_s = 0, wait_s = 0, io_s = 0, io_cpu_s = 0;
  int64_t waited_steps = 0;  // steps whose write() found the queue full
};

class LogWriter {
 public:
  // `provenance`: entries become root attributes (strings as is, other JSON values dumped).
  LogWriter(const std::filesystem::path& path, LogSelection selection, int64_t last_step,
            const nlohmann::json& provenance, WriteMode mode = WriteMode::kStreaming);
  ~LogWriter();
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  void write(const StepRecord& record);
  // Blocks until every step written so far has been handed to HDF5 and, when streaming, flushed
  // to disk (at most flush-seconds later). Rethrows a writer-thread error.
  void sync();
  // Drains the queue, marks the log's end and closes it. kComplete rethrows a writer-thread
  // error; the other ends are best effort (they run on an error path) and keep what was written.
  void close(LogEnd end = LogEnd::kComplete, const std::string& reason = "");
  // Totals so far (complete once close() has returned).
  LogWriterTimes times() {
    std::lock_guard lock(mu_);
    return times_;
  }

  struct Row;
  struct StepBatch;
  struct Series;

 private:
  void writer_loop();
  void write_batch(StepBatch& batch);
  Series& series_for(const Row& row);
  static void check_shape(const Series& s, const Row& row, int64_t step);
  void flush_rows();
  void flush_to_disk();
  void write_progress();
  void rethrow_if_failed();
  std::exception_ptr write_failure() const;

  std::filesystem::path path_;
  LogSelection selection_;
  int64_t last_step_;
  WriteMode mode_;
  H5Id file_;
  std::map<std::string, std::unique_ptr<Series>> series_;
  H5Id digests_, digest_mem_type_;  // /digests and its in-memory row type
  hsize_t n_digest_rows_ = 0;       // rows on disk
  std::vector<DigestRow> pending_rows_;
  std::set<std::string> declared_;  // training thread: names handed to the writer so far
  int64_t first_record_step_ = -1;  // training thread
  bool globs_checked_ = false;      // training thread
  bool swmr_ = false;
  int64_t last_written_ = -1;
  int64_t first_written_ = -1;  // 0, or a resumed run's checkpoint step
  int64_t on_disk_ = -1;        // last step /progress holds on disk
  H5Id progress_;  // /progress: [last complete step] (attributes cannot change under SWMR)

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<StepBatch>> queue_;
  size_t queued_bytes_ = 0;
  bool closing_ = false;
  std::exception_ptr error_;
  std::thread thread_;
  bool closed_ = false;
  LogWriterTimes times_;  // under mu_: hash_s, wait_s by write(); io_s, io_cpu_s by the writer
};

}  // namespace cliprepro
