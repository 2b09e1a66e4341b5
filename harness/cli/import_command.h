// `cliprepro import-openclip [--out FILE.toml] [--replay LOG] [-- <open_clip_train.main flags>]`
// (harness/scenario/openclip_import.h).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace cliprepro::cli {

// Writes the scenario to `out` (atomically, after it has loaded as a scenario), or prints it.
// `replay`: a recording of OpenCLIP (python -m cliprepro.record): the scenario replays it
// (dataset-type "replay", its intra-op threads), and empty `flags` mean the recorded ones.
int cmd_import_openclip(std::vector<std::string> flags, const std::filesystem::path& out,
                        const std::filesystem::path& replay = {});

}  // namespace cliprepro::cli
