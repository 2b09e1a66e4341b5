#include "src/data/real_data.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/core/Generator.h>

#include <stdexcept>

#include "src/data/image_decode.h"
#include "src/data/random_erasing.h"

namespace cliprepro {

uint64_t sample_seed(uint64_t seed, int64_t epoch, int64_t id) {
  uint64_t s = seed;
  s = splitmix64(s) ^ uint64_t(epoch);
  s = splitmix64(s) ^ uint64_t(id);
  return splitmix64(s);
}

RealData::RealData(const RealDataOptions& options, std::shared_ptr<const ClipTokenizer> tokenizer)
    : options_(options), tokenizer_(std::move(tokenizer)) {
  if (options_.train_data.empty()) throw std::runtime_error("real training data needs train-data");
  if (options_.dataset_type == DatasetType::kCsv) {
    csv_ = std::make_unique<CsvDataset>(options_.train_data, options_.csv);
  } else if (options_.dataset_type == DatasetType::kWebdataset) {
    wds_ = std::make_unique<WebDataset>(options_.train_data);
  } else {
    throw std::runtime_error("synthetic data is not real data (csv, webdataset)");
  }
  if (options_.skip_bad_samples) find_bad_samples();
  if (size() == 0) {
    throw std::runtime_error(options_.train_data +
                             (bad_.empty() ? ": no samples" : ": no sample could be decoded"));
  }
}

void RealData::find_bad_samples() {
  const int64_t n = source_size();
  std::vector<std::string> errors(static_cast<size_t>(n));
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      try {
        const auto raw = get_source(i);
        decode_image(raw.image_bytes.data(), raw.image_bytes.size(), raw.source);
      } catch (const std::exception& e) {
        errors[size_t(i)] = e.what();
        if (errors[size_t(i)].empty()) errors[size_t(i)] = "unreadable";
      }
    }
  });
  for (int64_t i = 0; i < n; ++i) {
    if (errors[size_t(i)].empty()) {
      kept_.push_back(i);
      continue;
    }
    const std::string src = csv_ ? csv_->source(size_t(i)) : wds_->source(size_t(i));
    std::string reason = errors[size_t(i)];
    if (reason.rfind(src + ": ", 0) == 0) reason = reason.substr(src.size() + 2);
    bad_.push_back({src, reason});
  }
}

int64_t RealData::source_size() const { return int64_t(csv_ ? csv_->size() : wds_->size()); }

int64_t RealData::size() const {
  return options_.skip_bad_samples ? int64_t(kept_.size()) : source_size();
}

std::vector<SkippedSample> RealData::skipped() const {
  auto out = wds_ ? wds_->skipped() : std::vector<SkippedSample>{};
  out.insert(out.end(), bad_.begin(), bad_.end());
  return out;
}

RawSample RealData::get_source(int64_t source_id) const {
  return csv_ ? csv_->get(size_t(source_id)) : wds_->get(size_t(source_id));
}

std::string RealData::load_sample(int64_t source_id, int64_t epoch, torch::Tensor out) const {
  // The sample owns its generator: its bits do not depend on which thread makes it, or when.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(sample_seed(options_.seed, epoch, source_id));
  return load_sample(source_id, gen, out);
}

std::string RealData::load_sample(int64_t source_id, at::Generator& gen, torch::Tensor out) const {
  const auto raw = get_source(source_id);
  PilImage img;
  try {
    img = decode_image(raw.image_bytes.data(), raw.image_bytes.size(), raw.source);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("cannot decode training sample: ") + e.what());
  }
  auto x = train_transform(img, options_.image_size, gen, options_.scale);
  random_erasing_(x, options_.re_prob, gen);
  out.copy_(x);
  return raw.caption;
}

Batch RealData::empty_batch(const std::vector<int64_t>& ids, bool pinned) const {
  const int64_t n = int64_t(ids.size()), s = options_.image_size;
  Batch b;
  b.images =
      torch::empty({n, 3, s, s}, torch::TensorOptions(torch::kFloat32).pinned_memory(pinned));
  b.captions.resize(size_t(n));
  std::vector<int64_t> source_ids(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) source_ids[i] = source_id(ids[i]);
  b.sample_ids = torch::tensor(source_ids, torch::kInt64);
  b.labels = torch::full({n}, -1, torch::kInt64);
  return b;
}

void RealData::finish_batch(Batch& b) const {
  b.tokens = tokenizer_->tokenize(b.captions, options_.context_length);
}

Batch RealData::batch(const std::vector<int64_t>& ids, int64_t epoch) const {
  Batch b = empty_batch(ids, false);
  const auto* sid = b.sample_ids.data_ptr<int64_t>();
  at::parallel_for(0, int64_t(ids.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      b.captions[size_t(i)] = load_sample(sid[i], epoch, b.images[i]);
  });
  finish_batch(b);
  return b;
}

}  // namespace cliprepro
