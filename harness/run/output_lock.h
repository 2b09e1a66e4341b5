// One writer per log: a second `cliprepro run` into the same --out would truncate the first's
// open HDF5 file and then wait minutes in HDF5's retries. An exclusive flock on <log>.lock, taken
// before the log is created, refuses it at once and names the run that holds it.
#pragma once
#include <filesystem>

namespace cliprepro {

class OutputLock {
 public:
  // Throws, naming the holder (pid, command, start time), when another process holds the lock.
  explicit OutputLock(const std::filesystem::path& output);
  ~OutputLock();  // removes the lock file
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace cliprepro
