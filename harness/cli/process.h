// Child processes of the CLI: study variants, a study's prepare step, OpenCLIP's own argument
// parser for import-openclip.
#pragma once
#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace cliprepro::cli {

// Starts argv (searched on PATH) with stdout and stderr into `output`, in `cwd` when given, in a
// process group of its own; it gets SIGTERM if the CLI dies without passing a signal on.
pid_t spawn(const std::vector<std::string>& argv, const std::filesystem::path& output,
            const std::filesystem::path& cwd = {});

// Waits until one of `running` ends (its pid; *status as waitpid's). Polls, so that a SIGINT or
// SIGTERM the CLI received (install_stop_handlers) is passed on, once, to the process group of
// every running child: spawn() puts each in its own group, so only this way does a signal to the
// CLI (or a terminal's Ctrl-C) reach them, and none is left running when the CLI ends.
pid_t wait_for_child(const std::vector<pid_t>& running, int* status);

// Runs argv to completion as spawn() does: its exit code, or 128 + the signal that ended it.
// Throws RunInterrupted (step -1) when the CLI was asked to stop; the child has ended by then.
int run_to_file(const std::vector<std::string>& argv, const std::filesystem::path& output,
                const std::filesystem::path& cwd = {});

// This cliprepro binary (/proc/self/exe), for the children that run a subcommand.
std::string self_exe();

// A child's output file (or any file) as text; "" when it cannot be read.
std::string read_text(const std::filesystem::path& p);

}  // namespace cliprepro::cli
