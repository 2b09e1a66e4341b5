// An undecoded image-caption pair as read from a CSV list or a WebDataset shard.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace cliprepro {

struct RawSample {
  std::string key;                   // CSV: the image path as written; tar: the member prefix
  std::vector<uint8_t> image_bytes;  // encoded JPEG/PNG bytes
  std::string caption;
  std::string source;  // where it came from, for error messages: "file.csv:12" / "shard.tar:key"
};

}  // namespace cliprepro
