#include "harness/cli/process.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "harness/cli/commands.h"
#include "harness/run/interrupt.h"

namespace cliprepro::cli {

std::string self_exe() {
  std::error_code ec;
  const auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw std::runtime_error("cannot find the cliprepro binary (/proc/self/exe)");
  return p.string();
}

pid_t spawn(const std::vector<std::string>& argv, const std::filesystem::path& output,
            const std::filesystem::path& cwd) {
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("cannot start a process for " + argv.front());
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(kExitError);  // the CLI died before prctl took hold
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(kExitError);
    const int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    std::vector<char*> args;
    for (const auto& s : argv) args.push_back(const_cast<char*>(s.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    std::fprintf(stderr, "cannot run %s\n", args[0]);
    _exit(kExitError);
  }
  setpgid(pid, pid);  // as the child does: whichever runs first, the group exists
  return pid;
}

pid_t wait_for_child(const std::vector<pid_t>& running, int* status) {
  bool forwarded = false;
  for (;;) {
    for (const pid_t pid : running) {
      const pid_t r = waitpid(pid, status, WNOHANG);
      if (r == pid) return pid;
      if (r < 0 && errno != EINTR) throw std::runtime_error("lost track of a child process");
    }
    if (const int sig = stop_signal(); sig != 0 && !forwarded) {
      for (const pid_t pid : running) kill(-pid, sig);
      forwarded = true;
    }
    usleep(50 * 1000);
  }
}

int run_to_file(const std::vector<std::string>& argv, const std::filesystem::path& output,
                const std::filesystem::path& cwd) {
  int status = 0;
  wait_for_child({spawn(argv, output, cwd)}, &status);
  if (const int sig = stop_signal()) throw RunInterrupted(sig, -1);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string read_text(const std::filesystem::path& p) {
  std::stringstream ss;
  ss << std::ifstream(p, std::ios::binary).rdbuf();
  return ss.str();
}

}  // namespace cliprepro::cli
