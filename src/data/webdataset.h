// WebDataset tar shards as OpenCLIP reads them (--dataset-type webdataset): shard lists with
// brace expansion and '::' separators; members grouped into samples by webdataset's
// base_plus_ext (prefix = path up to the first '.' of the basename, suffix lower-cased) over
// consecutive members; samples need a 'txt' caption and an image ('jpg', 'png', 'jpeg', 'webp',
// first present wins, as wds rename("jpg;png;jpeg;webp")). Incomplete samples are skipped and
// recorded (OpenCLIP drops them silently).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "src/data/raw_sample.h"

namespace cliprepro {

// Python braceexpand semantics for {a,b}, {N..M}, {N..M..step} (zero-padded when a bound has a
// leading zero), nesting and '\' escapes.
std::vector<std::string> expand_braces(const std::string& pattern);
// webdataset's expand_urls: split on "::", brace-expand each part.
std::vector<std::string> expand_shard_list(const std::string& spec);

struct TarMember {
  std::string name;
  uint64_t offset = 0;  // of the data
  uint64_t size = 0;
};
// Regular-file members of a POSIX/ustar/GNU/pax tar, in order. Throws naming the file on a bad
// header checksum or a member running past the end of the file.
std::vector<TarMember> list_tar(const std::string& path);

struct SkippedSample {
  std::string source;  // "shard.tar:key"
  std::string reason;
};

class WebDataset {
 public:
  // Indexes every shard (headers only). Throws naming the shard if one cannot be read.
  explicit WebDataset(const std::string& shard_spec);
  explicit WebDataset(const std::vector<std::string>& shards);

  size_t size() const { return samples_.size(); }
  const std::vector<std::string>& shards() const { return shards_; }
  // Samples left out for lacking an image or a caption.
  const std::vector<SkippedSample>& skipped() const { return skipped_; }
  // Reads sample i's image and caption bytes (random access through the index).
  RawSample get(size_t i) const;
  // Where sample i comes from, as error messages name it: "shard.tar:key".
  std::string source(size_t i) const;

 private:
  struct Entry {
    size_t shard;
    std::string key, image_ext;
    TarMember image, text;
  };
  void index_shard(size_t shard);

  std::vector<std::string> shards_;
  std::vector<Entry> samples_;
  std::vector<SkippedSample> skipped_;
};

}  // namespace cliprepro
