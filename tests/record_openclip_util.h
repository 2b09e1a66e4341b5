// The recorder's end-to-end tests: OpenCLIP's own open_clip_train.main on a set built by
// scripts/make_image_text_set.py, recorded by `python -m cliprepro.record`, then replayed or
// imported by cliprepro and compared (tests/record_openclip_util.cpp).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

#include "tests/test_util.h"

namespace cliprepro::record_test {

inline constexpr int kImages = 24;  // batch 8: 3 steps at world size 1; batch 4: 3 at world 2

// A fresh directory with the set (scripts/make_image_text_set.py; `options` are the script's) at
// <dir>/set: train.csv, and shards/shard-NNN.tar of 8 samples each unless --no-shards.
std::filesystem::path data_dir(const std::string& name, const std::string& options = "",
                               int images = kImages);

// OpenCLIP's flags for the tiny model (by path) on that set (`data`: its CSV by default); `extra`
// adds or overrides.
std::string openclip_flags(
    int batch, const std::string& extra,
    const std::string& data = "--train-data set/train.csv --dataset-type csv");

// `python -m cliprepro.record --out rec/<out>` in `dir` (under torchrun at world > 1).
test::CommandResult record(const std::filesystem::path& dir, const std::string& out, int world,
                           const std::string& flags, const std::string& options = "");

// Renames an imported scenario (OpenCLIP's --name, else openclip-import) to `name`, appends
// `extra`, and runs it in `dir` with its log at dir/out (under torchrun at world > 1).
void run_as(const std::filesystem::path& dir, const std::filesystem::path& toml,
            const std::string& name, int world, const std::string& extra = "");

// import-openclip --replay of dir/rec/<recording>, then cliprepro run.
void replay(const std::filesystem::path& dir, const std::string& recording, const std::string& name,
            int world);

// compare must say MATCH, and the log must hold every family the issue names at every step.
void expect_match(const std::filesystem::path& ours, const std::filesystem::path& recorded,
                  int64_t steps = 3);

// import-openclip (seeding = "openclip", no replay) of `flags`, then run_as.
void run_imported(const std::filesystem::path& dir, const std::string& flags,
                  const std::string& name, int world);

}  // namespace cliprepro::record_test
