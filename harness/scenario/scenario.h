// Scenario files (TOML): training keys named as OpenCLIP's flags, plus [determinism], [numerics],
// [debug], [log] and [golden]. Every key is one row of a table (scenario_keys()); the reader,
// the resolved config and docs/scenario-schema.md's tables derive from it. Errors carry
// file:line:column.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "harness/compare/tolerance.h"
#include "harness/log/log_selection.h"
#include "src/train/train_config.h"

namespace cliprepro {

class ScenarioError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct GoldenConfig {
  std::filesystem::path path;  // resolved against the scenario file's directory
  LogSelection selection;      // full tensors kept in the golden; digests as [log]
  // Applied by `golden check` when the run's environment fingerprint differs from the
  // golden's; with the same fingerprint the check is bitwise.
  TolerancePolicy tolerance;
};

struct Scenario {
  std::filesystem::path path;
  std::string variant;  // of a study file (harness/scenario/study.h); empty for a plain scenario
  std::string name, description;
  std::string text;  // the file as read
  TrainConfig train;
  LogSelection log;
  GoldenConfig golden;  // path empty: no golden

  // Every key's value after defaults, with the scenario's key names (sections nested), plus
  // the derived total-steps, steps-per-epoch and world-size.
  nlohmann::json resolved() const;
};

// Every scenario key: the harness's own (name, description, [log], [golden]) and the trainer's
// (train_config_keys()), in the order the docs list them.
const std::vector<ConfigKey<Scenario>>& scenario_keys();
// The key `key` of [section] ("" = top level), or nullptr.
const ConfigKey<Scenario>* find_scenario_key(const std::string& section, const std::string& key);

// "" when `name` can be a log's file stem (the `name` key, or the scenario file's stem), else
// the rule it breaks.
std::string scenario_name_problem(const std::string& name);

// The longest schedule a scenario may ask for: more cannot be meant, and step arithmetic
// (steps per epoch × epochs) is checked against it.
inline constexpr int64_t kMaxTotalSteps = 1'000'000'000;

// `variant`: the variant of a study file to read (a study file needs one; a plain scenario none).
Scenario load_scenario(const std::filesystem::path& path, const std::string& variant = "");
Scenario parse_scenario(const std::string& text, const std::filesystem::path& path,
                        const std::string& variant = "");
// What names the scenario in commands: "FILE" or "FILE --variant NAME".
std::string scenario_argument(const Scenario& s);

}  // namespace cliprepro
