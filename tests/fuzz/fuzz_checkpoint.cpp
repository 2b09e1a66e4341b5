// Checkpoints (safetensors and torch zip, told apart by content, as read_checkpoint does): any
// bytes give a state dict whose tensors lie inside memory it owns, or a std::runtime_error.
// One source, two targets (fuzz_safetensors, fuzz_torch_zip) that differ in their seed corpus.
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "src/model/checkpoint.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<char> bytes(reinterpret_cast<const char*>(data),
                                reinterpret_cast<const char*>(data) + size);
  try {
    uint64_t sum = 0;
    for (const auto& [name, t] : cliprepro::read_checkpoint_bytes(bytes, "fuzz.ckpt")) {
      sum += name.size() + cliprepro::fuzz::touch_storage(t);
    }
    volatile uint64_t sink = sum;
    (void)sink;
  } catch (const std::runtime_error&) {
  }
  return 0;
}
