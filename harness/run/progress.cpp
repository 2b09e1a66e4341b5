#include "harness/run/progress.h"

#include <unistd.h>

#include <cstdio>

namespace cliprepro {

Progress::Progress(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled),
      tty_(isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

void Progress::update(int64_t step, double loss, double lr) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const bool last = step == total_;
  const int64_t every = total_ >= 10 ? total_ / 10 : 1;
  if (tty_) {
    if (!last && now - last_draw_ < std::chrono::milliseconds(100)) return;
  } else if (!last && step % every != 0) {
    return;
  }
  last_draw_ = now;
  const double rate = elapsed > 0 ? double(step) / elapsed : 0.0;
  const double eta = rate > 0 ? double(total_ - step) / rate : 0.0;
  const int width = 24;
  const int filled = total_ > 0 ? int(width * step / total_) : width;
  std::string bar(size_t(filled), '#');
  bar.resize(width, '.');
  std::fprintf(stderr, "%s%s [%s] step %lld/%lld  loss %.4f  lr %.3e  %.1f step/s  ETA %.0fs%s",
               tty_ ? "\r" : "", label_.c_str(), bar.c_str(), (long long)step, (long long)total_,
               loss, lr, rate, eta, tty_ ? "\033[K" : "\n");
  std::fflush(stderr);
  last_printed_ = step;
}

void Progress::finish() {
  if (enabled_ && tty_ && last_printed_ >= 0) std::fprintf(stderr, "\n");
}

}  // namespace cliprepro
