// Logs and goldens (HDF5): any bytes open to a reader whose series and full tensors can all be
// read, or give a std::runtime_error naming the file. libhdf5 itself is not instrumented; what
// this covers is our reading of whatever it returns (goldens are also SHA-256-checked first).
#include <cstdint>
#include <stdexcept>

#include "harness/compare/golden_text.h"
#include "harness/log/log_reader.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = cliprepro::fuzz::write_scratch(data, size, "log.h5");
  try {
    const cliprepro::LogReader log(path);
    uint64_t sum = 0;
    for (const auto& [name, s] : log.series()) {
      for (const int64_t step : s.full_steps) {
        sum += cliprepro::fuzz::touch_storage(log.read_full(name, step));
      }
    }
    sum += cliprepro::golden_text(log).size();
    volatile uint64_t sink = sum;
    (void)sink;
  } catch (const std::runtime_error&) {
  }
  return 0;
}
