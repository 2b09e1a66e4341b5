// WebDataset tar shards: any bytes index to samples whose members lie inside the file, or give a
// std::runtime_error naming the shard; reading every indexed sample then works or throws too.
#include <cstdint>
#include <stdexcept>

#include "src/data/webdataset.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = cliprepro::fuzz::write_scratch(data, size, "shard.tar");
  try {
    const cliprepro::WebDataset ds(std::vector<std::string>{path});
    for (size_t i = 0; i < ds.size(); ++i) {
      const auto s = ds.get(i);
      volatile size_t sink = s.image_bytes.size() + s.caption.size();
      (void)sink;
    }
  } catch (const std::runtime_error&) {
  }
  return 0;
}
