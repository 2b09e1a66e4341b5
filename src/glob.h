// Shell-style glob on tensor and module names: '*' matches any run of characters (including '/'),
// '?' one.
#pragma once
#include <string>
#include <vector>

namespace cliprepro {

bool glob_match(const std::string& pattern, const std::string& text);
bool glob_match_any(const std::vector<std::string>& patterns, const std::string& text);

}  // namespace cliprepro
