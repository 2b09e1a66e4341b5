// OpenCLIP's CSV and WebDataset training data as the trainer consumes it: samples picked by id,
// decoded PIL-exactly, augmented with OpenCLIP's train transform from a generator seeded by
// (seed, epoch, sample id) — so a batch's bits do not depend on how many threads decode it —
// and captions tokenized with the CLIP BPE tokenizer.
#pragma once
#include <torch/types.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "src/data/clip_tokenizer.h"
#include "src/data/csv_dataset.h"
#include "src/data/synthetic_shapes.h"
#include "src/data/transforms.h"
#include "src/data/webdataset.h"

namespace cliprepro {

struct RealDataOptions {
  std::string dataset_type;  // "csv" | "webdataset"
  std::string train_data;    // CSV file, or shard list with braces and "::"
  CsvOptions csv;
  std::array<double, 2> scale = kOpenClipScale;  // aug-cfg scale (RandomResizedCrop)
  int64_t image_size = 224;
  int64_t context_length = 77;
  uint64_t seed = 0;
};

class RealData {
 public:
  // Indexes the data (CSV rows or tar headers). Throws naming the file for anything unreadable.
  RealData(const RealDataOptions& options, std::shared_ptr<const ClipTokenizer> tokenizer);
  int64_t size() const;
  // Samples `ids` of `epoch`: images (B,3,S,S) float32, tokens (B,context) int64, sample_ids,
  // captions; labels are -1 (no classes). A sample that cannot be decoded throws naming its
  // source ("list.csv row 12 (path/img.jpg)" / "shard.tar:key").
  Batch batch(const std::vector<int64_t>& ids, int64_t epoch) const;
  // Samples WebDataset left out for lacking an image or caption.
  std::vector<SkippedSample> skipped() const;

 private:
  RawSample get(int64_t id) const;

  RealDataOptions options_;
  std::unique_ptr<CsvDataset> csv_;
  std::unique_ptr<WebDataset> wds_;
  std::shared_ptr<const ClipTokenizer> tokenizer_;
};

// The augmentation generator's seed for one sample of one epoch (splitmix64 mixing).
uint64_t sample_seed(uint64_t seed, int64_t epoch, int64_t id);

}  // namespace cliprepro
