// Progress display on stderr: a live line on a terminal, a line per ~10% otherwise (CI logs).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace cliprepro {

class Progress {
 public:
  Progress(std::string label, int64_t total, bool enabled);
  void update(int64_t step, double loss, double lr);
  void finish();

 private:
  std::string label_;
  int64_t total_;
  bool enabled_, tty_;
  int64_t last_printed_ = -1;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace cliprepro
