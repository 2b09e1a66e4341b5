// Files read and written without surprises: an input must be a regular file (a FIFO would block
// its reader forever, a directory or /dev/zero reads as garbage or without end), and an output
// never goes through a symbolic link or replaces what is not a regular file (cliprepro often runs
// as root: `--json /dev/null` must not replace the system's /dev/null).
#pragma once
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace cliprepro {

// Throws, naming `what` and the path, unless `path` is a regular file (links followed: an input
// may be a link, as goldens in a shared cache are).
void require_regular_file(const std::filesystem::path& path, const std::string& what);

// The whole regular file, opened without blocking (a FIFO is refused, not waited on).
std::string read_regular_file(const std::filesystem::path& path, const std::string& what);
std::vector<char> read_regular_file_bytes(const std::filesystem::path& path,
                                          const std::string& what);

// Throws unless `path` may be created or replaced by cliprepro: absent, or a regular file that
// is not a symbolic link. Used before creating a file that other code (HDF5) opens by name.
void require_output_target(const std::filesystem::path& path, const std::string& what);

// The same for a directory cliprepro fills (a run's checkpoints): absent (then created) or a real
// directory, never a link to one elsewhere.
void require_output_directory(const std::filesystem::path& path, const std::string& what);

// Writes a file whole or not at all: into a new temporary beside it (O_EXCL|O_NOFOLLOW), renamed
// over the target by commit(). The temporary is removed when commit() is not reached. A character
// device or FIFO the user named (`--json /dev/stdout`) is written to as a stream, never replaced;
// a FIFO nobody reads is refused at once. Errors carry the OS's reason.
class AtomicFile {
 public:
  AtomicFile(const std::filesystem::path& path, const std::string& what);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t bytes);
  void write(std::string_view text) { write(text.data(), text.size()); }
  void commit();

 private:
  [[noreturn]] void fail(const std::string& doing);
  std::filesystem::path path_, tmp_;
  std::string what_;
  int fd_ = -1;
  bool stream_ = false, committed_ = false;
};

// AtomicFile in one call.
void write_file_atomically(const std::filesystem::path& path, std::string_view text,
                           const std::string& what = "output");

}  // namespace cliprepro
