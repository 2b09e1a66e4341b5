// OpenCLIP's CSV and WebDataset training data as the trainer consumes it: samples picked by id,
// decoded PIL-exactly, augmented with OpenCLIP's train transform from a generator seeded by
// (seed, epoch, sample id) — so a batch's bits do not depend on how many threads decode it —
// and captions tokenized with the CLIP BPE tokenizer.
#pragma once
#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "src/data/clip_tokenizer.h"
#include "src/data/csv_dataset.h"
#include "src/data/dataset_type.h"
#include "src/data/synthetic_shapes.h"
#include "src/data/transforms.h"
#include "src/data/webdataset.h"

namespace cliprepro {

struct RealDataOptions {
  DatasetType dataset_type = DatasetType::kCsv;  // kCsv or kWebdataset
  std::string train_data;                        // CSV file, or shard list with braces and "::"
  CsvOptions csv;
  std::array<double, 2> scale = kOpenClipScale;  // aug-cfg scale (RandomResizedCrop)
  double re_prob = 0.0;  // aug-cfg re_prob with use_timm: timm's RandomErasing, pixel mode
  int64_t image_size = 224;
  int64_t context_length = 77;
  uint64_t seed = 0;
  // Decode every sample once when indexing and leave out (and report) those that fail,
  // instead of stopping at the first batch that holds one.
  bool skip_bad_samples = false;
};

class RealData {
 public:
  // Indexes the data (CSV rows or tar headers). Throws naming the file for anything unreadable.
  RealData(const RealDataOptions& options, std::shared_ptr<const ClipTokenizer> tokenizer);
  // Samples an epoch runs over (bad ones left out when skipping). Ids given to batch() are
  // positions in [0, size()); the batch reports each sample's id in the source (CSV row order /
  // sample order across shards), which also seeds its augmentation.
  int64_t size() const;
  // Samples `ids` of `epoch`: images (B,3,S,S) float32, tokens (B,context) int64, sample_ids,
  // captions; labels are -1 (no classes). A sample that cannot be decoded throws naming its
  // source ("list.csv row 12 (path/img.jpg)" / "shard.tar:key").
  Batch batch(const std::vector<int64_t>& ids, int64_t epoch) const;
  // batch() in three parts, for loaders that make samples on their own threads
  // (src/data/batch_prefetcher.h): the batch with sample_ids, labels and room for the images
  // (in pinned host memory for CUDA copies); one sample's augmented image into `out` (its
  // caption returned); the tokens once every caption is there.
  Batch empty_batch(const std::vector<int64_t>& ids, bool pinned) const;
  std::string load_sample(int64_t source_id, int64_t epoch, torch::Tensor out) const;
  // The same with the augmentation drawn from `gen` (OpenCLIP's seeding: a stream of draws
  // shared by the samples a loader worker makes, src/data/openclip_loader.h).
  std::string load_sample(int64_t source_id, at::Generator& gen, torch::Tensor out) const;
  void finish_batch(Batch& b) const;
  // Samples left out: WebDataset samples lacking an image or caption, and with
  // skip_bad_samples those that could not be read or decoded.
  std::vector<SkippedSample> skipped() const;

 private:
  int64_t source_size() const;
  RawSample get_source(int64_t source_id) const;
  int64_t source_id(int64_t id) const { return kept_.empty() ? id : kept_[size_t(id)]; }
  void find_bad_samples();

  RealDataOptions options_;
  std::unique_ptr<CsvDataset> csv_;
  std::unique_ptr<WebDataset> wds_;
  std::shared_ptr<const ClipTokenizer> tokenizer_;
  std::vector<int64_t> kept_;  // skip_bad_samples: source ids of the good samples
  std::vector<SkippedSample> bad_;
};

// The augmentation generator's seed for one sample of one epoch (splitmix64 mixing).
uint64_t sample_seed(uint64_t seed, int64_t epoch, int64_t id);

}  // namespace cliprepro
