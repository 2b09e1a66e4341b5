#include "src/train/host_memory.h"

#include <malloc.h>

#include <mutex>

namespace cliprepro {

void keep_freed_host_memory() {
  static std::once_flag once;
  std::call_once(once, [] {
    // 32 MiB is glibc's largest dynamic threshold; setting it also stops it moving.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, -1);  // -1: never trim (mallopt(3))
  });
}

}  // namespace cliprepro
