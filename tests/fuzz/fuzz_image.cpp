// Image decoders (JPEG, PNG, told apart by content) on arbitrary bytes: a decoded image inside
// the pixel limit, or a std::runtime_error naming the file — no crash, no unbounded allocation.
#include <cstdint>
#include <stdexcept>

#include "src/data/image_decode.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // 4 M pixels: the limit's check runs at a size libFuzzer's memory limit allows.
  static const bool limited = (cliprepro::set_max_image_pixels(int64_t(1) << 22), true);
  (void)limited;
  try {
    const auto rgb = cliprepro::decode_rgb(data, size, "fuzz.img");
    volatile uint64_t sink = cliprepro::fuzz::touch_storage(rgb);
    (void)sink;
  } catch (const std::runtime_error&) {
  }
  return 0;
}
