#include "src/safe_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace cliprepro {
namespace {

std::string os_reason() { return std::strerror(errno); }

const char* kind_of(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISLNK(m)) return "a symbolic link";
  return "not a regular file";
}

std::string not_regular(const std::string& what, const std::filesystem::path& p, mode_t m) {
  return what + " " + p.string() + " is " + kind_of(m) + ", not a regular file";
}

std::runtime_error link_refused(const std::string& what, const std::filesystem::path& p,
                                const std::string& instead) {
  return std::runtime_error(what + " " + p.string() +
                            " is a symbolic link: cliprepro does not write through links "
                            "(remove it, or " +
                            instead + ")");
}

}  // namespace

void require_regular_file(const std::filesystem::path& path, const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw std::runtime_error("cannot open " + what + " " + path.string() + ": " + os_reason());
  if (!S_ISREG(st.st_mode)) throw std::runtime_error(not_regular(what, path, st.st_mode));
}

namespace {

template <typename Buffer>
Buffer read_regular(const std::filesystem::path& path, const std::string& what) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    throw std::runtime_error("cannot open " + what + " " + path.string() + ": " + os_reason());
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const mode_t mode = st.st_mode;
    ::close(fd);
    throw std::runtime_error(not_regular(what, path, mode));
  }
  Buffer bytes(size_t(st.st_size), '\0');
  size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = n < 0 ? os_reason() : "it shrank while being read";
      ::close(fd);
      throw std::runtime_error("cannot read " + what + " " + path.string() + ": " + why);
    }
    got += size_t(n);
  }
  ::close(fd);
  return bytes;
}

}  // namespace

std::string read_regular_file(const std::filesystem::path& path, const std::string& what) {
  return read_regular<std::string>(path, what);
}

std::vector<char> read_regular_file_bytes(const std::filesystem::path& path,
                                          const std::string& what) {
  return read_regular<std::vector<char>>(path, what);
}

void require_output_target(const std::filesystem::path& path, const std::string& what) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return;  // absent: created
  if (S_ISLNK(st.st_mode)) throw link_refused(what, path, "name the file it points to");
  if (!S_ISREG(st.st_mode))
    throw std::runtime_error(not_regular(what, path, st.st_mode) + ": refusing to replace it");
}

void require_output_directory(const std::filesystem::path& path, const std::string& what) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) {
      throw std::runtime_error("cannot create " + what + " " + path.string() + ": " + ec.message());
    }
    return;
  }
  if (S_ISLNK(st.st_mode)) throw link_refused(what, path, "choose another --out");
  if (!S_ISDIR(st.st_mode)) {
    throw std::runtime_error(what + " " + path.string() + " is " + kind_of(st.st_mode) +
                             ", not a directory");
  }
}

AtomicFile::AtomicFile(const std::filesystem::path& path, const std::string& what)
    : path_(path), what_(what) {
  struct stat st {};
  // A device or FIFO the user named (links followed: /dev/stdout is one) is a stream.
  if (::stat(path.c_str(), &st) == 0 && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))) {
    stream_ = true;
    // O_NONBLOCK: a FIFO without a reader fails (ENXIO) instead of waiting for one.
    fd_ = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd_ < 0) fail("open");
    const int flags = ::fcntl(fd_, F_GETFL);
    if (flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK) != 0) fail("open");
    return;
  }
  require_output_target(path, what);
  tmp_ = path;
  tmp_ += ".tmp-" + std::to_string(::getpid());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    tmp_.clear();  // not ours to remove
    throw std::runtime_error("cannot write " + what + " " + path.string() + ": " + os_reason());
  }
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !tmp_.empty()) ::unlink(tmp_.c_str());
}

void AtomicFile::fail(const std::string& doing) {
  const std::string why = os_reason();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!tmp_.empty()) ::unlink(tmp_.c_str());  // a full disk stays full otherwise
  tmp_.clear();
  throw std::runtime_error("cannot " + doing + " " + what_ + " " + path_.string() + ": " + why);
}

void AtomicFile::write(const void* data, size_t bytes) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::write(fd_, p, bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = ENOSPC;
      fail("write");
    }
    p += n;
    bytes -= size_t(n);
  }
}

void AtomicFile::commit() {
  // No fsync: a full disk fails the write itself (file systems reserve blocks at write time);
  // durability against power loss is not what a checkpoint every step should pay for.
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("write");
  if (!stream_ && std::rename(tmp_.c_str(), path_.c_str()) != 0) fail("rename the new");
  committed_ = true;
}

void write_file_atomically(const std::filesystem::path& path, std::string_view text,
                           const std::string& what) {
  AtomicFile f(path, what);
  f.write(text);
  f.commit();
}

}  // namespace cliprepro
