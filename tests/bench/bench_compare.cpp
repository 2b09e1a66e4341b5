// `cliprepro compare` against `h5diff -d` on the same pair of large logs, side by side in one run
// (scripts/bench_ratios.py build/tests/bench/bench_compare prints the ratios). Two pairs:
//  - identical: two runs that reproduced (the common CI case); compare settles it by the digest
//    tables alone and reads no tensor data (integrity is `compare --verify` / `cliprepro verify`);
//  - every value differs: each tensor of B is A's times (1 + 2^-20). h5diff compares and counts
//    every element of every dataset; compare reads and diffs each tensor's first differing step
//    element by element (max error, ULP, cosine, and its digest re-checked) — the first
//    divergence is all it reports per tensor.
// Logs: 12 tensors of 1 Mi float32 values, full at each of 8 steps (384 MiB per log), written
// once to /tmp and removed at exit.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "harness/compare/compare.h"
#include "harness/log/log_writer.h"

namespace cliprepro {
namespace {

constexpr int kTensors = 12, kSteps = 8;
constexpr int64_t kElements = 1 << 20;

std::string bench_path(const char* name) {
  return "/tmp/cliprepro-bench-" + std::to_string(getpid()) + "-" + name + ".h5";
}

void write_log(const std::string& path, double factor) {
  LogSelection sel;
  sel.full_steps = {parse_step_spec("0:")};
  sel.full_tensors = {"*"};
  LogWriter w(path, sel, kSteps - 1, nlohmann::json::object());
  for (int s = 0; s < kSteps; ++s) {
    StepRecord rec;
    rec.step = s;
    for (int t = 0; t < kTensors; ++t) {
      torch::manual_seed(uint64_t(1000 * s + t));
      auto x = torch::randn({kElements});
      if (factor != 1) x = x * factor;
      rec.tensors.push_back({"params/t" + std::to_string(t), Phase::kOptimizer, x});
    }
    w.write(rec);
  }
  w.close();
}

struct Logs {
  std::string a = bench_path("a"), same = bench_path("same"), differ = bench_path("differ");
  Logs() { write_log(a, 1), write_log(same, 1), write_log(differ, 1 + 1.0 / (1 << 20)); }
  ~Logs() {
    for (const auto& p : {a, same, differ}) std::remove(p.c_str());
  }
};

const Logs& logs() {
  static const Logs l;
  return l;
}

// Cold page cache is not reproducible without root; both tools read the same warm files.
void BM_Compare(benchmark::State& state) {
  const auto& b = state.range(0) == 0 ? logs().same : logs().differ;
  for (auto _ : state) {
    const LogReader ra(logs().a), rb(b);
    CompareOptions opts;
    const auto r = compare_logs(ra, rb, opts);
    if (r.equal() != (state.range(0) == 0)) state.SkipWithError("unexpected verdict");
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * 2 * kTensors * kSteps * kElements * 4);
}
BENCHMARK(BM_Compare)->Arg(0)->Arg(1)->Iterations(2)->Unit(benchmark::kMillisecond);

void BM_H5diff(benchmark::State& state) {
  const auto& b = state.range(0) == 0 ? logs().same : logs().differ;
  // -d 0: report every element whose absolute difference exceeds 0 (exit 1 when any does).
  const std::string cmd = "h5diff -d 0 " + logs().a + " " + b + " > /dev/null 2>&1";
  for (auto _ : state) {
    const int rc = std::system(cmd.c_str());
    if (!WIFEXITED(rc) || WEXITSTATUS(rc) > 1) state.SkipWithError("h5diff failed");
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * 2 * kTensors * kSteps * kElements * 4);
}
BENCHMARK(BM_H5diff)->Arg(0)->Arg(1)->Iterations(2)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace cliprepro

BENCHMARK_MAIN();
