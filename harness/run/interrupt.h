// SIGINT/SIGTERM during a run: the run stops after the step it is in, its log is flushed and
// marked `interrupted` (with the last step it holds), and the CLI says where it stopped and exits
// 128 + the signal (130, 143). A second signal ends the process at once.
#pragma once
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace cliprepro {

// step -1: a command that runs others (a study) stopped after passing the signal on to them.
class RunInterrupted : public std::runtime_error {
 public:
  RunInterrupted(int signal, int64_t step, std::filesystem::path log = {});
  int signal() const { return signal_; }
  int64_t step() const { return step_; }
  const std::filesystem::path& log() const { return log_; }

 private:
  int signal_;
  int64_t step_;
  std::filesystem::path log_;
};

// Installs the SIGINT/SIGTERM handlers (idempotent).
void install_stop_handlers();
// The signal that asked the run to stop; 0 when none did.
int stop_signal();
// "SIGINT", "SIGTERM", or "signal N".
std::string signal_name(int signal);

}  // namespace cliprepro
