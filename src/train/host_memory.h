// Host memory for a training process: freed blocks stay with the process for the next step.
#pragma once

namespace cliprepro {

// glibc's malloc returns freed memory to the kernel (munmap of large blocks, heap trimming)
// and grows its mmap threshold with every large free, so each step faults in, and the kernel
// zeroes, hundreds of MB of pages the previous step had just released. Holding a step's
// captured tensors a little longer (logging) shifts that threshold and doubled the faults
// (RN50 batch 8: +37 % step time for capture alone). A fixed 32 MiB mmap threshold and no
// trimming keep the steady state at the peak working set, reused each step, as PyTorch's
// caching allocators do on devices. Process-wide, idempotent; addresses never change bits.
void keep_freed_host_memory();

}  // namespace cliprepro
