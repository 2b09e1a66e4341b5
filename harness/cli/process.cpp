#include "harness/cli/process.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "harness/cli/commands.h"

namespace cliprepro::cli {

std::string self_exe() {
  std::error_code ec;
  const auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw std::runtime_error("cannot find the cliprepro binary (/proc/self/exe)");
  return p.string();
}

pid_t spawn(const std::vector<std::string>& argv, const std::filesystem::path& output,
            const std::filesystem::path& cwd) {
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("cannot start a process for " + argv.front());
  if (pid == 0) {
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
  return pid;
}

int run_to_file(const std::vector<std::string>& argv, const std::filesystem::path& output,
                const std::filesystem::path& cwd) {
  int status = 0;
  if (waitpid(spawn(argv, output, cwd), &status, 0) < 0)
    throw std::runtime_error("cannot wait for " + argv.front());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string read_text(const std::filesystem::path& p) {
  std::stringstream ss;
  ss << std::ifstream(p, std::ios::binary).rdbuf();
  return ss.str();
}

}  // namespace cliprepro::cli
