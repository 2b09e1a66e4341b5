// Scenario files (TOML) from untrusted hands: any text gives a Scenario or a ScenarioError with
// file:line:column — never a crash, a hang or another exception type ("stoll").
#include <cstdint>
#include <string>

#include "harness/scenario/scenario.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto s = cliprepro::parse_scenario(text, "/nonexistent/fuzz/scenario.toml");
    (void)s.resolved().dump();
  } catch (const cliprepro::ScenarioError&) {
  }
  return 0;
}
