// A log's text companion (<dir>/<stem>.txt beside <dir>/<stem>.h5; goldens have one, written by
// `golden bless`) records the SHA-256 of the log file's bytes. Every reader checks a log that
// has one against it before HDF5 parses a byte: a damaged golden is refused by its hash, never
// handed to libhdf5, whose 1.10 parser has crashed on damaged files (Corruption.* sweeps).
#pragma once
#include <filesystem>
#include <string>

namespace cliprepro {

// <dir>/<stem>.txt for <dir>/<stem>.h5.
std::filesystem::path companion_path(const std::filesystem::path& log);

// The companion's line `sha256<TAB><hex>`: the SHA-256 of the log file's bytes.
inline constexpr const char* kSha256Field = "sha256";
// The SHA-256 a companion's text records; "" when it has none.
std::string recorded_sha256(const std::string& companion);

// Throws std::runtime_error when `log` has a companion recording a SHA-256 its bytes do not hash
// to; a log without a companion, or whose companion records none, passes.
void check_recorded_sha256(const std::filesystem::path& log);

}  // namespace cliprepro
