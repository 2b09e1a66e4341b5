// Helpers shared by the test suites: temp dirs, running the CLI, flipping bits in HDF5 files.
#pragma once
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "harness/log/log_format.h"

namespace cliprepro::test {

// A fresh directory under the build tree's temp area. The test program removes it at exit when
// every test passed (a full CI run would otherwise leave about 17 GB behind) and keeps it for
// inspection after a failure or with CLIPREPRO_KEEP_TEST_TMP=1 (tests/test_main.cpp).
std::filesystem::path temp_dir(const std::string& name);
// Removes every temp_dir this process made; called by test_main when no test failed.
void remove_temp_dirs();
// Removes a directory tree (POSIX nftw; libtorch.so's exported std::filesystem::remove_all
// crashes when it interposes ours).
void remove_tree(const std::filesystem::path& dir);

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};
// Runs a shell command line, capturing stdout and stderr.
CommandResult run_command(const std::string& command_line);
CommandResult run_cli(const std::string& args);
// The project Python (with torch, open_clip, h5py) on scripts/<script> with `args`.
CommandResult run_python_script(const std::string& script, const std::string& args);
// torchrun (as `python -m torch.distributed.run`, the venv's script has a stale shebang)
// starting `program` (an executable with its arguments) on `world` local ranks.
std::string torchrun(int world, const std::string& program);
// The same for scripts/<script> run by the project Python on every rank.
std::string torchrun_python(int world, const std::string& script, const std::string& args);

void write_file(const std::filesystem::path& p, const std::string& text);
std::string read_file(const std::filesystem::path& p);

// The quickstart scenario shortened to `steps` optimizer steps on a small data set, with its
// golden under `dir`. Written to dir/<name>.toml.
std::filesystem::path short_scenario(const std::filesystem::path& dir, const std::string& name,
                                     int steps, const std::string& extra_top_level = "");

// Flips bit `bit` of element `element` of row `row` of dataset `dataset` in an HDF5 file.
void flip_bit(const std::filesystem::path& file, const std::string& dataset, int64_t row,
              int64_t element, int bit);

// Replaces a log's /digests rows by edit(rows) (fewer, more or changed rows; the table is resized).
void edit_digest_rows(const std::filesystem::path& file,
                      const std::function<void(std::vector<DigestRow>&)>& edit);

// Writes a log's /progress (its last complete step), or removes it when `step` is nullopt.
void set_progress(const std::filesystem::path& file, std::optional<int64_t> step);

// Rewrites a string attribute on the file's root group (e.g. a log's fingerprint).
void set_root_attr(const std::filesystem::path& file, const std::string& name,
                   const std::string& value);

}  // namespace cliprepro::test
