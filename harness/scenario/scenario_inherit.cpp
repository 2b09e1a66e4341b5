#include "harness/scenario/scenario_inherit.h"

#include <fstream>
#include <sstream>

#include "harness/scenario/scenario.h"

namespace cliprepro {
namespace {

toml::table parse_toml(const std::string& text, const std::filesystem::path& path) {
  try {
    return toml::parse(text, path.string());
  } catch (const toml::parse_error& e) {
    throw ScenarioError(source_prefix(e.source(), path.string()) + std::string(e.description()));
  }
}

toml::table parse_chain(const std::string& text, const std::filesystem::path& path,
                        std::vector<std::filesystem::path>& chain) {
  chain.push_back(path);
  toml::table root = parse_toml(text, path);
  const toml::node* ext = root.get(kExtendsKey);
  if (ext == nullptr) return root;
  const std::string at = source_prefix(ext->source(), path.string());
  if (!ext->is_string()) throw ScenarioError(at + "'extends' must be a file name (a string)");
  const std::filesystem::path given(ext->as_string()->get());
  const auto parent = (given.is_absolute() ? given : path.parent_path() / given).lexically_normal();
  std::error_code ec;
  const auto canonical = std::filesystem::weakly_canonical(parent, ec);
  for (const auto& seen : chain) {
    if (!ec && std::filesystem::weakly_canonical(seen, ec) == canonical) {
      std::string cycle;
      for (const auto& p : chain) cycle += p.string() + " -> ";
      throw ScenarioError(at + "'extends' makes a cycle: " + cycle + parent.string());
    }
  }
  std::string parent_text;
  try {
    parent_text = read_scenario_file(parent);
  } catch (const ScenarioError& e) {
    throw ScenarioError(at + "'extends': " + e.what());
  }
  toml::table base = parse_chain(parent_text, parent, chain);
  root.erase(kExtendsKey);
  merge_into(base, std::move(root));
  return base;
}

}  // namespace

std::string read_scenario_file(const std::filesystem::path& path) {
  std::error_code ec;
  const bool regular = std::filesystem::is_regular_file(path, ec);
  const auto size = regular ? std::filesystem::file_size(path, ec) : 0;
  if (!regular || ec) throw ScenarioError(path.string() + ": cannot read scenario file");
  if (size > kMaxScenarioBytes) {
    throw ScenarioError(path.string() + ": " + std::to_string(size) +
                        " bytes is not a scenario file (at most " +
                        std::to_string(kMaxScenarioBytes) + ")");
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in) throw ScenarioError(path.string() + ": cannot read scenario file");
  return ss.str();
}

std::string source_prefix(const toml::source_region& src, const std::string& fallback) {
  return (src.path ? *src.path : fallback) + ":" + std::to_string(src.begin.line) + ":" +
         std::to_string(src.begin.column) + ": ";
}

void merge_into(toml::table& base, toml::table&& over) {
  for (auto&& [key, node] : over) {
    toml::node* mine = base.get(key.str());
    if (mine != nullptr && mine->is_table() && node.is_table()) {
      merge_into(*mine->as_table(), std::move(*node.as_table()));
      continue;
    }
    // Moved, not copied: a toml++ copy drops the source region that errors point at.
    // (`k`, not the binding `key`: clang 14, the sanitize preset, cannot capture a binding.)
    node.visit([&base, &k = key](auto&& n) { base.insert_or_assign(k, std::move(n)); });
  }
}

toml::table parse_with_parents(const std::string& text, const std::filesystem::path& path,
                               std::vector<std::filesystem::path>* chain) {
  std::vector<std::filesystem::path> files;
  toml::table root = parse_chain(text, path, files);
  root.erase(kExtendsKey);
  if (chain != nullptr) *chain = std::move(files);
  return root;
}

}  // namespace cliprepro
