#include "harness/run/output_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace cliprepro {
namespace {

// "pid 123: cliprepro run a.toml --out runs, since 2026-12-07T10:00:00Z"
std::string holder_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string cmd((std::istreambuf_iterator<char>(in)), {});
  for (char& c : cmd) c = c == '\0' ? ' ' : c;
  while (!cmd.empty() && cmd.back() == ' ') cmd.pop_back();
  char when[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return "pid " + std::to_string(::getpid()) + ": " + cmd + ", since " + when + "\n";
}

bool same_file(int fd, const std::filesystem::path& path) {
  struct stat a {
  }, b{};
  return ::fstat(fd, &a) == 0 && ::lstat(path.c_str(), &b) == 0 && a.st_dev == b.st_dev &&
         a.st_ino == b.st_ino;
}

}  // namespace

OutputLock::OutputLock(const std::filesystem::path& output) : path_(output) {
  path_ += ".lock";
  if (output.has_parent_path()) std::filesystem::create_directories(output.parent_path());
  // A holder unlinks the file as it lets go: a lock taken on an unlinked file guards nothing, so
  // try again until the locked file is the one at the path.
  for (int attempt = 0; attempt < 100; ++attempt) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      throw std::runtime_error("cannot create the lock " + path_.string() + " for " +
                               output.string() + ": " + std::strerror(errno));
    }
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      std::stringstream holder;
      holder << std::ifstream(path_).rdbuf();
      std::string who = holder.str();
      while (!who.empty() && who.back() == '\n') who.pop_back();
      ::close(fd_);
      fd_ = -1;
      if (err != EWOULDBLOCK) {
        throw std::runtime_error("cannot lock " + path_.string() + ": " + std::strerror(err));
      }
      throw std::runtime_error("another cliprepro process is writing " + output.string() + " (" +
                               (who.empty() ? "holder unknown" : who) +
                               "); wait for it to end, or choose another --out");
    }
    if (same_file(fd_, path_)) break;
    ::close(fd_);
    fd_ = -1;
  }
  if (fd_ < 0) throw std::runtime_error("cannot lock " + path_.string() + ": it keeps changing");
  const std::string line = holder_line();
  if (::ftruncate(fd_, 0) != 0 || ::write(fd_, line.data(), line.size()) < 0) {
    // Only the message to a second run would lack its holder: not worth failing the run.
  }
}

OutputLock::~OutputLock() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());  // before unlocking: a waiter re-checks that it locked this path
  ::close(fd_);
}

}  // namespace cliprepro
