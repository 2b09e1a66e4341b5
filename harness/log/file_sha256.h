// SHA-256 of a file's bytes (OpenSSL), as 64 lowercase hex digits: a golden's companion records
// it so that a damaged or edited golden is refused before HDF5 parses a byte of it.
#pragma once
#include <filesystem>
#include <string>

namespace cliprepro {

// Throws std::runtime_error naming the file when it cannot be read.
std::string file_sha256(const std::filesystem::path& path);

}  // namespace cliprepro
