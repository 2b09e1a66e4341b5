// Where a training step's time goes, as a profile beside OpenCLIP's eager step
// (scripts/bench_openclip.py --profile times the same phases in PyTorch), CPU fp32:
//  BM_StepPhases: zero_grad, forward, loss (CLIP logits + cross-entropy), backward, AdamW step,
//    on random images and tokens, nothing logged (counters: seconds per step);
//  BM_TrainStep/mode: the trainer's whole step (Trainer::train_step, synthetic data) with
//    logging off (0), every tensor captured but nothing written (1), and digests + statistics of
//    every tensor written every step as `cliprepro run` does by default (2; the writer drained
//    before the clock stops). Counter step_s: seconds per step; in mode 2 also hash_s (digests
//    and statistics on the training thread), wait_s (back-pressure) and io_cpu_s (the writer
//    thread's CPU), per step.
// The first step (allocator, oneDNN primitives, the log's datasets) is not timed.
//
//   build/tests/bench/bench_step_phases [--model tiny-bpe,RN50] [--batch 32,8] [--steps 10,4]
//       [--threads 2] [Google Benchmark flags]
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "harness/log/log_writer.h"
#include "src/train/clip_loss.h"
#include "src/train/determinism.h"
#include "src/train/trainer.h"
#include "tests/bench/bench_config.h"

namespace cliprepro {
namespace {

void BM_StepPhases(benchmark::State& state, const std::string& model, int64_t batch, int threads) {
  auto cfg = bench_train_config(model, batch);
  cfg.determinism.threads = threads;
  apply_determinism(cfg.determinism, 0);
  Trainer trainer(cfg);
  const auto& mc = trainer.model_config();
  torch::manual_seed(0);
  const auto images = torch::randn({batch, 3, mc.vision.image_size, mc.vision.image_size});
  const auto tokens = torch::randint(0, mc.text.vocab_size, {batch, mc.text.context_length});
  using Clock = std::chrono::steady_clock;
  std::array<double, 5> sec{};
  auto step = [&](bool timed) {
    auto t = Clock::now();
    auto lap = [&](int k) {
      const auto now = Clock::now();
      if (timed) sec[size_t(k)] += std::chrono::duration<double>(now - t).count();
      t = now;
    };
    trainer.optimizer().zero_grad();
    lap(0);
    const auto out = trainer.model()->forward(images, tokens);
    lap(1);
    const auto loss =
        clip_loss(clip_logits(out.image_features, out.text_features, out.logit_scale));
    lap(2);
    loss.backward();
    lap(3);
    trainer.optimizer().step();
    lap(4);
  };
  step(false);
  for (auto _ : state) step(true);
  const double n = double(state.iterations());
  const char* names[] = {"zero_grad_s", "forward_s", "loss_s", "backward_s", "optimizer_s"};
  for (size_t k = 0; k < sec.size(); ++k) state.counters[names[k]] = sec[k] / n;
  state.SetItemsProcessed(state.iterations() * batch);
}

void BM_TrainStep(benchmark::State& state, const std::string& model, int64_t batch, int threads) {
  const int64_t mode = state.range(0);
  auto cfg = bench_train_config(model, batch);
  cfg.determinism.threads = threads;
  apply_determinism(cfg.determinism, 0);
  Trainer trainer(cfg);
  const std::string path = "/tmp/cliprepro-bench-phases-" + std::to_string(getpid()) + ".h5";
  std::unique_ptr<LogWriter> writer;
  if (mode == 2)
    writer = std::make_unique<LogWriter>(path, LogSelection{}, 1 << 30, nlohmann::json::object());
  StepRecord warm_step;
  trainer.train_step(0, mode != 0 ? &warm_step : nullptr);
  if (writer) {
    writer->write(warm_step);
    writer->sync();
  }
  const auto warm = writer ? writer->times() : LogWriterTimes{};
  int64_t step = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    StepRecord rec;
    rec.step = ++step;
    benchmark::DoNotOptimize(trainer.train_step(step, mode != 0 ? &rec : nullptr));
    if (writer) writer->write(rec);
  }
  if (writer) writer->close();
  const auto wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  state.counters["step_s"] = wall / double(step);
  if (writer) {  // where logging's time goes, per timed step (the warm-up step left out)
    const auto t = writer->times();
    const double n = double(step);
    state.counters["hash_s"] = (t.hash_s - warm.hash_s) / n;        // training thread
    state.counters["wait_s"] = (t.wait_s - warm.wait_s) / n;        // training thread, queue full
    state.counters["io_cpu_s"] = (t.io_cpu_s - warm.io_cpu_s) / n;  // writer thread
  }
  state.SetItemsProcessed(state.iterations() * batch);
  std::remove(path.c_str());
}

template <typename T>
std::vector<T> parse_list(const std::string& s) {
  std::vector<T> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    if constexpr (std::is_same_v<T, std::string>) {
      out.push_back(item);
    } else {
      out.push_back(T(std::stoll(item)));
    }
  }
  return out;
}

}  // namespace
}  // namespace cliprepro

int main(int argc, char** argv) {
  using namespace cliprepro;
  std::vector<std::string> models{"tiny-bpe", "RN50"};
  std::vector<int64_t> batches{32, 8}, steps{10, 4};
  int threads = 2;
  int kept = 1;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string f = argv[i];
      if (f == "--model" && i + 1 < argc) {
        models = parse_list<std::string>(argv[++i]);
      } else if (f == "--batch" && i + 1 < argc) {
        batches = parse_list<int64_t>(argv[++i]);
      } else if (f == "--steps" && i + 1 < argc) {
        steps = parse_list<int64_t>(argv[++i]);
      } else if (f == "--threads" && i + 1 < argc) {
        threads = std::stoi(argv[++i]);
      } else {
        argv[kept++] = argv[i];
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_step_phases: bad option value (%s)\n", e.what());
    return 2;
  }
  argc = kept;
  if (batches.size() != models.size() || steps.size() != models.size()) {
    std::fprintf(stderr, "bench_step_phases: --model, --batch and --steps need as many items\n");
    return 2;
  }
  for (size_t i = 0; i < models.size(); ++i) {
    benchmark::RegisterBenchmark(
        ("BM_StepPhases/" + models[i] + "/batch:" + std::to_string(batches[i])).c_str(),
        BM_StepPhases, models[i], batches[i], threads)
        ->Iterations(steps[i])
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(
        ("BM_TrainStep/" + models[i] + "/batch:" + std::to_string(batches[i])).c_str(),
        BM_TrainStep, models[i], batches[i], threads)
        ->ArgName("mode")
        ->DenseRange(0, 2)
        ->Iterations(steps[i])
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
