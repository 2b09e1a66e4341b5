// The scenario reader: every key is looked up in scenario_keys(), converted to its row's type,
// validated and set by the row; only rules that span keys are written here.
#include "harness/scenario/scenario.h"

#include <toml++/toml.h>
#include <fstream>
#include <limits>
#include <sstream>

namespace cliprepro {
namespace {

class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail_at(const toml::source_region& src, const std::string& msg) const {
    throw ScenarioError(file_ + ":" + std::to_string(src.begin.line) + ":" +
                        std::to_string(src.begin.column) + ": " + msg);
  }
  [[noreturn]] void fail(const toml::node& n, const std::string& msg) const {
    fail_at(n.source(), msg);
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

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw ScenarioError(p.string() + ": cannot read scenario file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A relative path in a scenario means relative to the scenario file; empty stays empty.
std::string from_scenario(const std::filesystem::path& scenario, const std::string& p) {
  if (p.empty()) return p;
  const std::filesystem::path given(p);
  return (given.is_absolute() ? given : scenario.parent_path() / given).lexically_normal().string();
}

const ConfigKey<Scenario>* find_key(const std::string& section, const std::string& key) {
  for (const auto& k : scenario_keys())
    if (k.section == section && k.key == key) return &k;
  return nullptr;
}

bool is_section(const std::string& name) {
  for (const auto& k : scenario_keys())
    if (k.section == name) return true;
  return false;
}

}  // namespace

Scenario load_scenario(const std::filesystem::path& path) {
  return parse_scenario(slurp(path), path);
}

Scenario parse_scenario(const std::string& text, const std::filesystem::path& path) {
  const std::string file = path.string();
  toml::table root;
  try {
    root = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    const auto& src = e.source();
    throw ScenarioError(file + ":" + std::to_string(src.begin.line) + ":" +
                        std::to_string(src.begin.column) + ": " + std::string(e.description()));
  }
  const Reader r(file);
  Scenario s;
  s.path = path;
  s.text = text;
  s.name = path.stem().string();

  auto set = [&](const ConfigKey<Scenario>& k, const toml::node& n) {
    ConfigValue v = r.value(n, k.type, k.key);
    if (k.has(kScenarioPath)) v = from_scenario(path, std::get<std::string>(v));
    try {
      k.set(s, v);
    } catch (const std::invalid_argument& e) {
      r.fail(n, e.what());
    }
  };
  for (const auto& [key, node] : root) {
    const std::string name(key.str());
    if (is_section(name)) {
      const auto* table = node.as_table();
      if (table == nullptr) r.fail(node, "'" + name + "' must be a table ([" + name + "])");
      for (const auto& [k2, n2] : *table) {
        const auto* k = find_key(name, std::string(k2.str()));
        if (k == nullptr)
          r.fail_at(k2.source(), "unknown key '" + std::string(k2.str()) + "' in [" + name + "]");
        set(*k, n2);
      }
      for (const auto& k : scenario_keys()) {
        if (k.section == name && k.has(kRequired) && !table->contains(k.key))
          r.fail(node, "[" + name + "] needs '" + k.key + "': " + k.doc);
      }
    } else if (const auto* k = find_key("", name)) {
      set(*k, node);
    } else {
      r.fail_at(key.source(), "unknown key '" + name + "'");
    }
  }

  // Rules that span keys.
  auto node = [&](const char* section, const char* key) -> const toml::node& {
    const toml::node* n =
        *section ? root.at_path(std::string(section) + "." + key).node() : root.get(key);
    return n != nullptr ? *n : static_cast<const toml::node&>(root);
  };
  if (!root.contains("name") && !scenario_name_problem(s.name).empty()) {
    r.fail(root, "the file stem '" + s.name + "' cannot name a log (" +
                     scenario_name_problem(s.name) + "): set 'name'");
  }
  const TrainConfig& t = s.train;  // at world size 1: the longest schedule a launch can give
  int64_t total = t.steps;
  if (t.steps == 0 && __builtin_mul_overflow(t.steps_per_epoch(), t.epochs, &total))
    total = std::numeric_limits<int64_t>::max();
  if (total > kMaxTotalSteps) {
    r.fail(node("", t.steps > 0 ? "steps" : "epochs"),
           "the schedule has more than " + std::to_string(kMaxTotalSteps) +
               " steps (steps per epoch " + std::to_string(t.steps_per_epoch()) + " x epochs " +
               std::to_string(t.epochs) + "): not a run that can be meant");
  }
  for (const auto& [section, specs] :
       {std::pair{"log", &s.log.full_steps}, std::pair{"golden", &s.golden.selection.full_steps}}) {
    for (const StepSpec& spec : *specs) {
      if (spec.start > total) {
        r.fail(node(section, "full-steps"), "full-steps: step " + std::to_string(spec.start) +
                                                " is beyond the run's last step " +
                                                std::to_string(total));
      }
    }
  }
  // A model-config path is relative to the scenario, as other paths are (a shipped name is not).
  if (s.train.model.ends_with(".json")) s.train.model = from_scenario(path, s.train.model);
  auto& data = s.train.data;
  if (data.dataset_type != DatasetType::kSynthetic && data.train_data.empty()) {
    r.fail(*root.get("dataset-type"),
           "dataset-type '" + std::string(enum_name(data.dataset_type)) + "' needs train-data");
  }
  // A CSV list is relative to the scenario, so a scenario and its list can move together
  // (WebDataset shard lists are URLs or brace patterns, used as written, as OpenCLIP does).
  if (data.dataset_type == DatasetType::kCsv)
    data.train_data = from_scenario(path, data.train_data);
  // A golden keeps the full tensors [golden] names and the digests [log] asks for.
  LogSelection golden = s.log;
  golden.full_steps = s.golden.selection.full_steps;
  golden.full_tensors = s.golden.selection.full_tensors;
  golden.origin = "[golden]";
  s.golden.selection = golden;
  return s;
}

}  // namespace cliprepro
