// `cliprepro compare`'s machine- and CI-readable outputs of one comparison: JSON, JUnit XML
// (one testcase per tensor; a differing tensor is a failure), a markdown summary and HTML.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "harness/compare/compare.h"

namespace cliprepro {

nlohmann::json compare_json(const CompareResult& r, const std::string& label_a,
                            const std::string& label_b);
std::string compare_junit(const CompareResult& r, const std::string& label_a,
                          const std::string& label_b);
std::string compare_markdown(const CompareResult& r, const std::string& label_a,
                             const std::string& label_b, size_t max_rows = 20);
// Self-contained HTML page: verdict, policy, first divergence, every differing tensor.
std::string compare_html(const CompareResult& r, const std::string& label_a,
                         const std::string& label_b);

}  // namespace cliprepro
