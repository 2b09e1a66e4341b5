// CLIP's tokenizer on arbitrary bytes (captions come from CSV files and tar shards): cleanup,
// BPE and tokenize never crash; invalid UTF-8 gives a std::runtime_error or is replaced.
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "src/data/clip_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto tokenizer =
      std::make_unique<cliprepro::ClipTokenizer>(cliprepro::ClipTokenizer::default_bpe_path());
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    // tokenize runs the cleanup and BPE (encode) and truncates; decode reads the ids back.
    const auto row = tokenizer->tokenize({text}, 77)[0].contiguous();
    const int64_t* ids = row.data_ptr<int64_t>();
    for (int64_t i = 0; i < row.numel(); ++i) {
      if (ids[i] < 0 || ids[i] >= tokenizer->vocab_size()) __builtin_trap();
    }
    (void)tokenizer->decode(std::vector<int64_t>(ids, ids + row.numel()));
  } catch (const std::runtime_error&) {
  }
  return 0;
}
