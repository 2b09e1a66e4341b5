// Child processes of the CLI: study variants, a study's prepare step, OpenCLIP's own argument
// parser for import-openclip.
#pragma once
#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace cliprepro::cli {

// Starts argv (searched on PATH) with stdout and stderr into `output`, in `cwd` when given.
pid_t spawn(const std::vector<std::string>& argv, const std::filesystem::path& output,
            const std::filesystem::path& cwd = {});

// Runs argv to completion as spawn() does: its exit code, or 128 + the signal that ended it.
int run_to_file(const std::vector<std::string>& argv, const std::filesystem::path& output,
                const std::filesystem::path& cwd = {});

// This cliprepro binary (/proc/self/exe), for the children that run a subcommand.
std::string self_exe();

// A child's output file (or any file) as text; "" when it cannot be read.
std::string read_text(const std::filesystem::path& p);

}  // namespace cliprepro::cli
