// cliprepro attribute's outputs: markdown findings and tables, an offline HTML heat map
// (layer x step, one per error family), and JSON with every value.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/compare/attribution.h"

namespace cliprepro {

// The plain sentences: per step, the variant's update error and, with --rank, the group that
// carries most of it ("at step 40, 61 % of amp_bf16's update error comes from layer1.bn").
std::vector<std::string> attribution_findings(const Attribution& a);

std::string attribution_markdown(const Attribution& a);
std::string attribution_html(const Attribution& a);
nlohmann::json attribution_json(const Attribution& a);

// DIR/attribution.{md,html,json}; returns the paths written.
std::vector<std::filesystem::path> write_attribution(const Attribution& a,
                                                     const std::filesystem::path& dir);

}  // namespace cliprepro
