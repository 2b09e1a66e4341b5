// The training data loader alone, as `cliprepro run` drives it: RealData on a CSV list with
// OpenCLIP's defaults for RN50 (224 px, the train transform with aug-cfg scale (0.9, 1), CLIP BPE
// captions cut to 77 tokens), micro-batches of B in the order a run asks for them (the seeded
// permutation of each epoch, world size 1, the last partial batch dropped as OpenCLIP does),
// made by BatchPrefetcher's W worker threads (scenario key `workers`) or, at W = 0, by
// RealData::batch on the intra-op threads (what a run with workers = 0 does inside the step).
// Every batch is tokenized (finish_batch), as OpenCLIP's loader tokenizes in its workers.
// items/s = images per second, wall clock. The first `warmup` batches (the pool starting) are
// fetched before the clock starts; scripts/bench_openclip.py times OpenCLIP's DataLoader alike.
// BM_SamplePhases: the same samples' steps timed apart on one thread (a profile, not a loader).
//
//   build/tests/bench/bench_loader --csv LIST.csv [--batch 32] [--batches 20] [--warmup 2]
//       [--workers 0,1,2] [--threads 2] [--image-size 224] [--context 77] [--seed 0]
//       [Google Benchmark flags]
// The list may also come from $CLIPREPRO_BENCH_CSV. Not run in CI (it needs a data set).
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "src/data/batch_prefetcher.h"
#include "src/data/clip_tokenizer.h"
#include "src/data/csv_dataset.h"
#include "src/data/image_decode.h"
#include "src/data/pil_resample.h"
#include "src/data/real_data.h"
#include "src/data/synthetic_shapes.h"
#include "src/data/transforms.h"

namespace cliprepro {
namespace {

struct LoaderArgs {
  std::string csv;
  int64_t batch = 32, batches = 20, warmup = 2, image_size = 224, context = 77;
  int threads = 2;
  uint64_t seed = 0;
  std::vector<int> workers{0, 1, 2};
};

// Micro-batch m of a run over `n` samples: Trainer::batch_plan at world size 1.
BatchPrefetcher::Plan run_plan(int64_t m, int64_t n, int64_t batch, uint64_t seed) {
  const int64_t per_epoch = n / batch;
  const int64_t epoch = m / per_epoch, i = m % per_epoch;
  const auto perm = seeded_permutation(n, seed * 1000003ull + uint64_t(epoch));
  return {std::vector<int64_t>(perm.begin() + i * batch, perm.begin() + (i + 1) * batch), epoch};
}

struct Data {
  std::shared_ptr<const ClipTokenizer> tokenizer;
  RealData real;
  CsvDataset csv;  // the same list, for BM_SamplePhases
};

RealDataOptions options(const LoaderArgs& a) {
  RealDataOptions o;
  o.dataset_type = DatasetType::kCsv;
  o.train_data = a.csv;
  o.image_size = a.image_size;
  o.context_length = a.context;
  o.seed = a.seed;
  return o;
}

const Data& data(const LoaderArgs& a) {
  static const Data d = [&] {
    auto tok = std::make_shared<const ClipTokenizer>(ClipTokenizer::default_bpe_path());
    return Data{tok, RealData(options(a), tok), CsvDataset(a.csv, options(a).csv)};
  }();
  return d;
}

void BM_Loader(benchmark::State& state, const LoaderArgs& a, int workers) {
  const RealData& d = data(a).real;
  const int64_t n = d.size();
  if (n < a.batch) {
    state.SkipWithError("the list holds fewer samples than one batch");
    return;
  }
  auto plan = [&](int64_t m) { return run_plan(m, n, a.batch, a.seed); };
  std::unique_ptr<BatchPrefetcher> pool;
  if (workers > 0)
    pool = std::make_unique<BatchPrefetcher>(d, plan, a.batches, workers, kBatchesAhead, false);
  auto get = [&](int64_t m) {
    if (pool) return pool->get(m);
    const auto p = plan(m);
    return d.batch(p.ids, p.epoch);
  };
  int64_t m = 0;
  for (; m < a.warmup; ++m) benchmark::DoNotOptimize(get(m).tokens.data_ptr());
  for (auto _ : state) {
    Batch b = get(m++);
    benchmark::DoNotOptimize(b.images.data_ptr());
    benchmark::DoNotOptimize(b.tokens.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * a.batch);
  state.counters["samples"] = double(n);
  state.counters["epochs"] = double(m * a.batch) / double(n);
}

// Where one sample's time goes on one thread: RealData::load_sample's steps timed apart (read
// the file, decode, crop parameters, crop + bicubic resize, RGB + ToTensor + Normalize, copy
// into the batch) and the batch's tokenization, as ms per sample over the run's first batches.
void BM_SamplePhases(benchmark::State& state, const LoaderArgs& a) {
  const Data& d = data(a);
  const int64_t n = d.real.size();
  if (n < a.batch) {
    state.SkipWithError("the list holds fewer samples than one batch");
    return;
  }
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  using Clock = std::chrono::steady_clock;
  std::array<double, 7> sec{};
  auto lap = [&sec](int k, Clock::time_point& t) {
    const auto now = Clock::now();
    sec[size_t(k)] += std::chrono::duration<double>(now - t).count();
    t = now;
  };
  int64_t m = 0;
  for (auto _ : state) {
    const auto plan = run_plan(m++ % (a.batches - a.warmup), n, a.batch, a.seed);
    Batch b = d.real.empty_batch(plan.ids, false);
    for (size_t i = 0; i < plan.ids.size(); ++i) {
      const int64_t id = plan.ids[i];
      auto t = Clock::now();
      const auto raw = d.csv.get(size_t(id));
      lap(0, t);
      const PilImage img = decode_image(raw.image_bytes.data(), raw.image_bytes.size(), raw.source);
      lap(1, t);
      auto gen = at::make_generator<at::CPUGeneratorImpl>(sample_seed(a.seed, plan.epoch, id));
      const auto p =
          random_resized_crop_params(img.height(), img.width(), kOpenClipScale, kDefaultRatio, gen);
      lap(2, t);
      const auto resized =
          pil_resize_bicubic(pil_crop(img, p.left, p.top, p.left + p.width, p.top + p.height),
                             a.image_size, a.image_size);
      lap(3, t);
      const auto x = to_normalized_tensor(resized);
      lap(4, t);
      b.images[int64_t(i)].copy_(x);
      b.captions[i] = raw.caption;
      lap(5, t);
    }
    auto t = Clock::now();
    d.real.finish_batch(b);
    lap(6, t);
    benchmark::DoNotOptimize(b.tokens.data_ptr());
  }
  at::set_num_threads(threads);
  const double samples = double(state.iterations() * a.batch);
  const char* names[] = {"read_ms",      "decode_ms", "crop_params_ms", "crop_resize_ms",
                         "normalize_ms", "copy_ms",   "tokenize_ms"};
  for (size_t k = 0; k < sec.size(); ++k) state.counters[names[k]] = 1e3 * sec[k] / samples;
  state.SetItemsProcessed(int64_t(samples));
}

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(std::stoi(item));
  return out;
}

// Takes this benchmark's options out of argv, leaving Google Benchmark's.
LoaderArgs parse_args(int& argc, char** argv) {
  LoaderArgs a;
  if (const char* env = std::getenv("CLIPREPRO_BENCH_CSV")) a.csv = env;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    const bool has_value = i + 1 < argc;
    auto value = [&] { return std::string(argv[++i]); };
    if (f == "--csv" && has_value) {
      a.csv = value();
    } else if (f == "--batch" && has_value) {
      a.batch = std::stoll(value());
    } else if (f == "--batches" && has_value) {
      a.batches = std::stoll(value());
    } else if (f == "--warmup" && has_value) {
      a.warmup = std::stoll(value());
    } else if (f == "--workers" && has_value) {
      a.workers = parse_list(value());
    } else if (f == "--threads" && has_value) {
      a.threads = std::stoi(value());
    } else if (f == "--image-size" && has_value) {
      a.image_size = std::stoll(value());
    } else if (f == "--context" && has_value) {
      a.context = std::stoll(value());
    } else if (f == "--seed" && has_value) {
      a.seed = std::stoull(value());
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  return a;
}

}  // namespace
}  // namespace cliprepro

int main(int argc, char** argv) {
  using namespace cliprepro;
  LoaderArgs a;
  try {
    a = parse_args(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_loader: bad option value (%s)\n", e.what());
    return 2;
  }
  if (a.csv.empty()) {
    std::fprintf(stderr,
                 "bench_loader: needs --csv LIST.csv or $CLIPREPRO_BENCH_CSV (e.g. a list from "
                 "scripts/make_image_text_set.py OUT N --size 224)\n");
    return 2;
  }
  if (a.batch < 1 || a.warmup < 0 || a.batches <= a.warmup) {
    std::fprintf(stderr, "bench_loader: needs --batch >= 1 and --batches > --warmup >= 0\n");
    return 2;
  }
  at::set_num_threads(a.threads);
  for (int w : a.workers) {
    benchmark::RegisterBenchmark(("BM_Loader/workers:" + std::to_string(w)).c_str(), BM_Loader, a,
                                 w)
        ->Iterations(a.batches - a.warmup)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::RegisterBenchmark("BM_SamplePhases", BM_SamplePhases, a)
      ->Iterations(a.batches - a.warmup)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::AddCustomContext("csv", a.csv);
  benchmark::AddCustomContext("batch", std::to_string(a.batch));
  benchmark::AddCustomContext("batches", std::to_string(a.batches));
  benchmark::AddCustomContext("warmup", std::to_string(a.warmup));
  benchmark::AddCustomContext("threads", std::to_string(a.threads));
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
