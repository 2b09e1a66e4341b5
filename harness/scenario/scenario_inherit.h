// Scenario inheritance: `extends = "base.toml"` (relative to the file naming it; chains allowed).
// The child's keys override its parent's; sections merge key by key. Every node keeps the source
// region of the file it was written in, so errors and relative paths refer to that file.
#pragma once
#include <toml++/toml.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace cliprepro {

inline constexpr const char* kExtendsKey = "extends";
// Scenario files are a few kB; a bound keeps `extends = "/dev/zero"` from reading forever.
inline constexpr uintmax_t kMaxScenarioBytes = uintmax_t(1) << 20;

// The file's text; ScenarioError if it is not a regular file of at most kMaxScenarioBytes.
std::string read_scenario_file(const std::filesystem::path& path);

// `text` (read from `path`) parsed, with its parents merged in and `extends` removed; `chain`
// receives the files from `path` up to the root-most parent. A TOML error, an unreadable or
// non-string parent, and a cycle throw ScenarioError with file:line:column.
toml::table parse_with_parents(const std::string& text, const std::filesystem::path& path,
                               std::vector<std::filesystem::path>* chain);

// Moves every key of `over` into `base`: tables merge key by key, anything else replaces.
void merge_into(toml::table& base, toml::table&& over);

// "file:line:column: " of a node (the file it was written in, else `fallback`).
std::string source_prefix(const toml::source_region& src, const std::string& fallback);

}  // namespace cliprepro
