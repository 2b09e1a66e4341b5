// Studies: one scenario file with a [study] section and [variants.NAME] tables. Every variant is a
// scenario of its own: the file's keys (and its parents', under `extends`) with the variant's
// keys over them, sections included, checked against its own golden <golden-dir>/<variant>.h5.
// `cliprepro study FILE` runs them all; `cliprepro run FILE --variant NAME` runs one.
#pragma once
#include <toml++/toml.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "harness/log/log_selection.h"
#include "src/train/config_key.h"

namespace cliprepro {

inline constexpr const char* kStudySection = "study";
inline constexpr const char* kVariantsTable = "variants";
inline constexpr const char* kReportsTable = "reports";

struct StudyVariant {
  std::string name;
  int64_t nproc = 1;     // ranks the study launches it with (torchrun --no-python); a launch key
  std::string log_name;  // its scenario's name: the log's stem (set by load_study)
};

// One report of a study: its variants against its reference, written to <out>/<name>/. Without
// [reports.NAME] tables a study has one, of every variant against [study] reference, in <out>.
struct StudyReport {
  std::string name;                   // its directory under --out; "" = --out itself
  std::string title;                  // default "Study <study>: <name> against <reference>"
  std::string reference;              // default [study] reference
  std::string noise_floor;            // default [study] noise-floor when the reference is its
  std::vector<std::string> variants;  // compared with the reference, in this order
  // cliprepro attribute of every variant against the reference at these steps; --rank too.
  std::vector<StepSpec> attribute_steps;
  bool attribute_rank = false;
};

struct Study {
  std::filesystem::path path;
  std::string name;                  // names the logs <name>-<variant>; default the file stem
  std::string reference;             // the variant the others are reported against
  std::string noise_floor;           // optional: the reference under a semantics-free change
  std::filesystem::path golden_dir;  // goldens: <golden-dir>/<variant>.h5; "" none
  std::vector<std::string> prepare;  // a Python script + its arguments, run before the variants
  std::filesystem::path prepare_creates;  // ... when this path does not exist yet
  std::vector<StudyVariant> variants;     // in file order
  std::vector<StudyReport> reports;       // [reports.NAME] in file order, else the one default
  const StudyVariant* find(const std::string& variant) const;
  std::string variant_names() const;  // "a, b, c"
  bool has_named_reports() const;     // [reports.NAME] tables rather than the default one
};

// The [study] section's keys, a variant's launch keys (`nproc`) and a report's keys, one row each.
const std::vector<ConfigKey<Study>>& study_keys();
const std::vector<ConfigKey<StudyVariant>>& variant_launch_keys();
const std::vector<ConfigKey<StudyReport>>& report_keys();

// Takes [study] and [variants] out of `root` (a file parsed with its parents). Without them:
// nullopt, and `variant` must be empty. With them, `variant` must name one: its table (launch
// keys taken out) is merged over the root, its log is named <study>-<variant> unless the
// variant sets `name`, and [golden] path is set to <golden-dir>/<variant>.h5. ScenarioError
// (file:line:column) for an unknown study or report key, a missing or unknown variant (also as a
// report's reference, floor or variant), or a [golden] path in a study.
std::optional<Study> take_study(toml::table& root, const std::filesystem::path& path,
                                const std::string& variant);

// The study of a file, every variant validated as a scenario; ScenarioError if it is not one.
Study load_study(const std::filesystem::path& path);

}  // namespace cliprepro
