// `cliprepro import-openclip [--out FILE.toml] -- <open_clip_train.main flags>`
// (harness/scenario/openclip_import.h).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace cliprepro::cli {

// Writes the scenario to `out` (atomically, after it has loaded as a scenario), or prints it.
int cmd_import_openclip(const std::vector<std::string>& flags, const std::filesystem::path& out);

}  // namespace cliprepro::cli
