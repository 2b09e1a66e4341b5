#include "harness/run/interrupt.h"

#include <csignal>

namespace cliprepro {
namespace {

volatile std::sig_atomic_t g_stop = 0;

extern "C" void on_stop_signal(int sig) {
  if (g_stop != 0) {  // asked twice: stop now, as the default action would
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  g_stop = sig;
}

}  // namespace

RunInterrupted::RunInterrupted(int signal, int64_t step, std::filesystem::path log)
    : std::runtime_error(step < 0 ? signal_name(signal)
                                  : signal_name(signal) + " after step " + std::to_string(step)),
      signal_(signal),
      step_(step),
      log_(std::move(log)) {}

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // blocking I/O resumes; the run checks the flag after each step
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int stop_signal() { return g_stop; }

std::string signal_name(int signal) {
  if (signal == SIGINT) return "SIGINT";
  if (signal == SIGTERM) return "SIGTERM";
  return "signal " + std::to_string(signal);
}

}  // namespace cliprepro
