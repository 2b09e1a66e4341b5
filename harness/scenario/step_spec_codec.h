// Scenario and study keys that take steps (7, -1, "10:20", "0::5"): [log] full-steps,
// [reports.NAME] attribute-steps.
#pragma once
#include "harness/log/log_selection.h"
#include "src/train/config_key.h"

namespace cliprepro {

template <>
struct ValueCodec<std::vector<StepSpec>> {
  static constexpr ValueType kType = ValueType::kSteps;
  static std::vector<StepSpec> from(const ConfigValue& v, const std::string&) {
    std::vector<StepSpec> out;
    for (const auto& s : std::get<std::vector<std::string>>(v)) out.push_back(parse_step_spec(s));
    return out;
  }
  static nlohmann::json to_json(const std::vector<StepSpec>& v) {
    auto j = nlohmann::json::array();
    for (const auto& s : v) {
      j.push_back(
          {{"start", s.start},
           {"stop", s.stop == StepSpec::kOpen ? nlohmann::json(nullptr) : nlohmann::json(s.stop)},
           {"stride", s.stride}});
    }
    return j;
  }
};

}  // namespace cliprepro
