// Shared by the libFuzzer targets: inputs as files where the code under test reads files, and a
// read of every byte a returned tensor can reach, in instrumented code (LibTorch itself is not
// built with ASan, so only our own loop catches a tensor that views memory it does not own).
#pragma once
#include <torch/types.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace cliprepro::fuzz {

// One file per process and target, in /dev/shm (tmpfs: no disk I/O per execution), removed when
// the process exits normally (a crash leaves it beside libFuzzer's own copy of the input).
inline std::string write_scratch(const uint8_t* data, size_t size, const std::string& target) {
  struct Scratch {
    std::string path;
    ~Scratch() { std::remove(path.c_str()); }
  };
  static const Scratch scratch{"/dev/shm/cliprepro-fuzz-" + std::to_string(::getpid()) + "-" +
                               target};
  const std::string& path = scratch.path;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) throw std::logic_error("cannot write " + path);  // not an input's fault
  const bool ok = std::fwrite(data, 1, size, f) == size;
  std::fclose(f);
  if (!ok) throw std::logic_error("cannot write " + path);
  return path;
}

// Sums every byte of the tensor's storage (which must cover every element it views).
inline uint64_t touch_storage(const torch::Tensor& t) {
  if (!t.defined() || !t.has_storage()) return 0;
  const auto* p = static_cast<const uint8_t*>(t.storage().data());
  uint64_t sum = 0;
  for (size_t i = 0, n = t.storage().nbytes(); i < n; ++i) sum += p[i];
  return sum;
}

}  // namespace cliprepro::fuzz
