// Reading TOML nodes as config values: a node converted to a key's ValueType, and errors at a
// node's file:line:column (the file it was written in, under `extends`).
#pragma once
#include <toml++/toml.h>

#include <array>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "harness/scenario/scenario.h"
#include "harness/scenario/scenario_inherit.h"
#include "src/train/config_key.h"

namespace cliprepro {

// A relative path in a scenario means relative to the scenario file that wrote it (a parent's
// paths are the parent's); empty stays empty.
inline std::string from_scenario(const std::filesystem::path& scenario, const std::string& p) {
  if (p.empty()) return p;
  const std::filesystem::path given(p);
  return (given.is_absolute() ? given : scenario.parent_path() / given).lexically_normal().string();
}

// The file a node was written in (under `extends`, maybe a parent), else `fallback`.
inline std::filesystem::path written_in(const toml::node* n,
                                        const std::filesystem::path& fallback) {
  return n != nullptr && n->source().path ? std::filesystem::path(*n->source().path) : fallback;
}

class TomlReader {
 public:
  explicit TomlReader(std::string file) : file_(std::move(file)) {}

  // Positions name the file the node was written in (a parent, under `extends`).
  [[noreturn]] void fail_at(const toml::source_region& src, const std::string& msg) const {
    throw ScenarioError(source_prefix(src, file_) + msg);
  }
  [[noreturn]] void fail(const toml::node& n, const std::string& msg) const {
    fail_at(n.source(), msg);
  }

  // Sets row `k` of `root` from node `n`: converted, a relative path resolved against the file
  // that wrote it, validated by the row; errors at the node.
  template <class Root>
  void set(const ConfigKey<Root>& k, const toml::node& n, Root& root) const {
    ConfigValue v = value(n, k.type, k.key);
    if (k.has(kScenarioPath)) v = from_scenario(written_in(&n, file_), std::get<std::string>(v));
    try {
      k.set(root, v);
    } catch (const std::invalid_argument& e) {
      fail(n, e.what());
    }
  }

  // The node as the row's ValueType; a wrong type names the key.
  ConfigValue value(const toml::node& n, ValueType type, const std::string& key) const {
    const std::string q = "'" + key + "'";
    switch (type) {
      case ValueType::kBool:
        if (!n.is_boolean()) fail(n, q + " must be true or false");
        return n.as_boolean()->get();
      case ValueType::kInt:
        if (!n.is_integer()) fail(n, q + " must be an integer");
        return n.as_integer()->get();
      case ValueType::kFloat:
        if (n.is_integer()) return double(n.as_integer()->get());
        if (!n.is_floating_point()) fail(n, q + " must be a number");
        return n.as_floating_point()->get();
      case ValueType::kString:
        if (!n.is_string()) fail(n, q + " must be a string");
        return n.as_string()->get();
      case ValueType::kStrings: {
        const auto* arr = n.as_array();
        if (arr == nullptr) fail(n, q + " must be a list of strings");
        std::vector<std::string> out;
        for (const auto& e : *arr) {
          if (!e.is_string()) fail(e, q + " entries must be strings");
          out.push_back(e.as_string()->get());
        }
        return out;
      }
      case ValueType::kFloatPair: {
        const auto* arr = n.as_array();
        if (arr == nullptr || arr->size() != 2 || !(*arr)[0].is_number() || !(*arr)[1].is_number())
          fail(n, q + " must be two numbers, e.g. [0.4, 1.0]");
        return std::array<double, 2>{(*arr)[0].value<double>().value(),
                                     (*arr)[1].value<double>().value()};
      }
      case ValueType::kSteps: {
        const auto* arr = n.as_array();
        if (arr == nullptr) fail(n, q + " must be a list of steps (7, -1, \"10:20\")");
        std::vector<std::string> out;
        for (const auto& e : *arr) {
          if (e.is_integer()) {
            out.push_back(std::to_string(e.as_integer()->get()));
          } else if (e.is_string()) {
            out.push_back(e.as_string()->get());
          } else {
            fail(e, "step entries are integers or \"a:b[:k]\" strings");
          }
        }
        return out;
      }
    }
    fail(n, q + ": unknown value type");
  }

 private:
  std::string file_;
};

}  // namespace cliprepro
