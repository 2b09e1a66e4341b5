// Logging cost, measured side by side in one run (scripts/bench_ratios.py prints the ratios):
//  - training step time with logging off, digests+stats of every tensor every step, and full
//    dumps of every tensor every step; tiny config (batch 32) and RN50 (batch 16), CPU fp32;
//  - write bandwidth of full dumps against a raw sequential write of the same bytes.
// Times include draining the writer queue (close()), so asynchronous writing hides nothing.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>

#include "harness/log/digest_stats.h"
#include "harness/log/log_writer.h"
#include "src/train/determinism.h"
#include "src/train/trainer.h"
#include "tests/bench/bench_config.h"

namespace cliprepro {
namespace {

// kCapture fills the step record (tape, BatchNorm batch statistics) but writes nothing: the
// part of the digests overhead that is capture, not hashing.
enum Mode { kOff = 0, kDigests = 1, kFull = 2, kCapture = 3 };

std::string bench_path(const char* name) {
  return "/tmp/cliprepro-bench-" + std::to_string(getpid()) + "-" + name + ".h5";
}

void BM_Step(benchmark::State& state, const std::string& model, int64_t batch) {
  const auto mode = Mode(state.range(0));
  auto cfg = bench_train_config(model, batch);
  apply_determinism(cfg.determinism, 0);
  Trainer trainer(cfg);
  const auto path = bench_path(model.c_str());
  std::unique_ptr<LogWriter> writer;
  if (mode == kDigests || mode == kFull) {
    LogSelection sel;
    if (mode == kFull) {
      sel.full_steps = {parse_step_spec("0:")};
      sel.full_tensors = {"*"};
    }
    writer = std::make_unique<LogWriter>(path, sel, 1 << 30, nlohmann::json::object());
  }
  // Warm-up step (allocator, oneDNN primitives), logged as step 0 and flushed before timing:
  // creating the log's datasets is a once-per-run cost, not a per-step one.
  StepRecord warm;
  trainer.train_step(0, mode != kOff ? &warm : nullptr);
  if (writer) {
    writer->write(warm);
    writer->sync();
  }
  const auto warm_times = writer ? writer->times() : LogWriterTimes{};
  int64_t step = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    StepRecord rec;
    rec.step = ++step;
    benchmark::DoNotOptimize(trainer.train_step(step, mode != kOff ? &rec : nullptr));
    if (writer) writer->write(rec);
  }
  if (writer) writer->close();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  state.counters["step_s"] = wall / double(step);  // includes draining the writer
  if (writer) {
    const auto t = writer->times();
    const double n = double(step);
    state.counters["hash_s"] = (t.hash_s - warm_times.hash_s) / n;  // training thread
    state.counters["wait_s"] = (t.wait_s - warm_times.wait_s) / n;  // training thread, queue full
    state.counters["io_s"] = (t.io_s - warm_times.io_s) / n;        // writer thread
    state.counters["io_cpu_s"] = (t.io_cpu_s - warm_times.io_cpu_s) / n;
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * batch);
  std::remove(path.c_str());
}

void BM_StepTiny(benchmark::State& s) { BM_Step(s, "tiny", 32); }
void BM_StepRN50(benchmark::State& s) { BM_Step(s, "RN50", 16); }
BENCHMARK(BM_StepTiny)
    ->Arg(kOff)
    ->Arg(kCapture)
    ->Arg(kDigests)
    ->Arg(kFull)
    ->Iterations(60)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_StepRN50)
    ->Arg(kOff)
    ->Arg(kCapture)
    ->Arg(kDigests)
    ->Arg(kFull)
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);

// Digest + statistics throughput of one float32 tensor (the per-byte cost of digests+stats).
void BM_DigestStats(benchmark::State& state) {
  torch::manual_seed(0);
  const auto x = torch::randn({int64_t(state.range(0)) << 20});
  for (auto _ : state) benchmark::DoNotOptimize(digest_and_stats(x, state.range(1) != 0));
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(x.nbytes()));
}
BENCHMARK(BM_DigestStats)->Args({16, 0})->Args({16, 1})->Unit(benchmark::kMillisecond);

// Waits until the file's data is on the disk, so that write bandwidths compare disks, not how
// much of the page cache happened to be free (that made unsynced figures vary 5x run to run).
void fsync_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0 || ::fsync(fd) != 0) throw std::runtime_error("cannot fsync " + path);
  ::close(fd);
}

// Writes `tensors` as one step per benchmark iteration into a new log, closes it, fsyncs it and
// removes it. `sync_each`: wait until each step is flushed before the next (one flush per step).
struct WrittenLog {
  int64_t steps = 0;
  double wall_s = 0;  // from the first write through close(), which drains the writer
  LogWriterTimes times;
};
WrittenLog write_step_per_iteration(benchmark::State& state, const char* name,
                                    const LogSelection& sel,
                                    const std::vector<NamedTensor>& tensors, bool sync_each) {
  const auto path = bench_path(name);
  LogWriter writer(path, sel, 1 << 30, nlohmann::json::object());
  WrittenLog r;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    StepRecord rec;
    rec.step = r.steps++;
    rec.tensors = tensors;
    writer.write(rec);
    if (sync_each) writer.sync();
  }
  writer.close();
  fsync_file(path);
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.times = writer.times();
  std::remove(path.c_str());
  return r;
}

// The writer thread's HDF5 cost per step for digests+stats rows: as many series as an RN50 log,
// one in six a 0-d tensor (stored in full, as steps and moments are), each step flushed before
// the next is written (flush-seconds = 0, sync); tensors tiny so hashing is nil.
void BM_WriterDigestRows(benchmark::State& state) {
  std::vector<NamedTensor> tensors;
  for (int64_t i = 0; i < state.range(0); ++i) {
    tensors.push_back({"params/p" + std::to_string(i), Phase::kOptimizer,
                       i % 6 == 0 ? torch::ones({}) : torch::ones({4})});
  }
  LogSelection sel;
  sel.flush_seconds = 0;
  const auto r = write_step_per_iteration(state, "rows", sel, tensors, /*sync_each=*/true);
  state.counters["io_s"] = r.times.io_s / double(r.steps);
  state.counters["io_cpu_s"] = r.times.io_cpu_s / double(r.steps);
}
BENCHMARK(BM_WriterDigestRows)->Arg(1100)->Arg(2200)->Iterations(40)->Unit(benchmark::kMillisecond);

// RN50-sized parameter set (float32), written as one full dump per iteration.
std::vector<NamedTensor> rn50_sized_tensors() {
  torch::manual_seed(0);
  std::vector<NamedTensor> v;
  const std::vector<std::vector<int64_t>> shapes{{49408, 512}, {2048, 2048}, {2048, 2048},
                                                 {2048, 2048}, {1024, 2048}, {512, 512, 3, 3},
                                                 {2048, 512},  {1536, 512}};
  for (size_t i = 0; i < shapes.size(); ++i) {
    v.push_back({"params/t" + std::to_string(i), Phase::kOptimizer, torch::randn(shapes[i])});
  }
  return v;
}

void BM_FullDumpWrite(benchmark::State& state) {
  const auto tensors = rn50_sized_tensors();
  int64_t bytes = 0;
  for (const auto& t : tensors) bytes += int64_t(t.tensor.nbytes());
  LogSelection sel;
  sel.full_steps = {parse_step_spec("0:")};
  sel.full_tensors = {"*"};
  const auto r = write_step_per_iteration(state, "dump", sel, tensors, /*sync_each=*/false);
  state.counters["MBps"] = double(bytes * r.steps) / r.wall_s / 1e6;
}
BENCHMARK(BM_FullDumpWrite)->Iterations(8)->Unit(benchmark::kMillisecond);

void BM_RawSequentialWrite(benchmark::State& state) {
  const auto tensors = rn50_sized_tensors();
  int64_t bytes = 0;
  const auto path = bench_path("raw");
  FILE* f = std::fopen(path.c_str(), "wb");
  int64_t n = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    for (const auto& t : tensors) {
      std::fwrite(t.tensor.data_ptr(), 1, t.tensor.nbytes(), f);
      bytes += int64_t(t.tensor.nbytes());
    }
    std::fflush(f);  // like H5Fflush: handed to the OS
    ++n;
  }
  std::fclose(f);
  fsync_file(path);  // as the full dump is, before its clock stops
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  state.counters["MBps"] = double(bytes) / wall / 1e6;
  std::remove(path.c_str());
}
BENCHMARK(BM_RawSequentialWrite)->Iterations(8)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace cliprepro

// As `cliprepro` runs: passive OpenMP waiting (docs/design.md), so the writer thread gets a core.
int main(int argc, char** argv) {
  cliprepro::reexec_with_passive_omp_wait(argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
