#include "harness/log/log_companion.h"

#include <stdexcept>

#include "harness/log/file_sha256.h"
#include "src/safe_file.h"

namespace cliprepro {

std::filesystem::path companion_path(const std::filesystem::path& log) {
  auto p = log;
  return p.replace_extension(".txt");
}

std::string recorded_sha256(const std::string& companion) {
  const std::string key = std::string("\n") + kSha256Field + "\t";
  const auto at = companion.find(key);
  if (at == std::string::npos) return "";
  const auto begin = at + key.size();
  return companion.substr(begin, companion.find('\n', begin) - begin);
}

void check_recorded_sha256(const std::filesystem::path& log) {
  const auto companion = companion_path(log);
  std::error_code ec;
  if (!std::filesystem::exists(companion, ec)) return;  // a plain log has none
  // A FIFO or device in its place is refused, not waited on.
  const std::string recorded = recorded_sha256(read_regular_file(companion, "text companion"));
  if (!recorded.empty() && file_sha256(log) != recorded) {
    throw std::runtime_error(log.string() + " does not hash to the SHA-256 its companion " +
                             companion_path(log).string() +
                             " records: damaged or edited since it was written (not read "
                             "further; a golden: bless it again)");
  }
}

}  // namespace cliprepro
