// The scenario reader: every key is looked up in scenario_keys(), converted to its row's type,
// validated and set by the row; only rules that span keys are written here.
#include "harness/scenario/scenario.h"

#include <toml++/toml.h>
#include <limits>
#include <sstream>
#include <tuple>

#include "harness/scenario/scenario_inherit.h"
#include "harness/scenario/study.h"
#include "harness/scenario/toml_reader.h"
#include "src/dist/process_group.h"
#include "src/model/precision_sites.h"
#include "src/train/model_factory.h"

namespace cliprepro {
const ConfigKey<Scenario>* find_scenario_key(const std::string& section, const std::string& key) {
  for (const auto& k : scenario_keys())
    if (k.section == section && k.key == key) return &k;
  return nullptr;
}

namespace {

bool is_section(const std::string& name) {
  for (const auto& k : scenario_keys())
    if (k.section == name) return true;
  return false;
}

// [numerics] fp32-modules / low-precision-modules: only inside autocast, and every glob must
// select a precision site of the scenario's model (named from its config: no kernel runs here).
template <class NodeOf>
void check_precision_overrides(const TrainConfig& t, const TomlReader& r, NodeOf node) {
  const auto& n = t.numerics;
  if (n.fp32_modules.empty() && n.low_precision_modules.empty()) return;
  const auto& key_node =
      node("numerics", n.fp32_modules.empty() ? "low-precision-modules" : "fp32-modules");
  try {
    precision_overrides(precision_mode(t.precision), n);
  } catch (const std::invalid_argument& e) {
    r.fail(key_node, e.what());
  }
  const auto sites = precision_site_names(load_model_config(t.model));
  try {
    resolve_site_precision(sites, {n.fp32_modules, n.low_precision_modules});
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    r.fail(node("numerics",
                what.rfind("fp32-modules", 0) == 0 ? "fp32-modules" : "low-precision-modules"),
           what);
  }
}

}  // namespace

Scenario load_scenario(const std::filesystem::path& path, const std::string& variant) {
  return parse_scenario(read_scenario_file(path), path, variant);
}

std::string scenario_argument(const Scenario& s) {
  return s.variant.empty() ? s.path.string() : s.path.string() + " --variant " + s.variant;
}

Scenario parse_scenario(const std::string& text, const std::filesystem::path& path,
                        const std::string& variant) {
  const std::string file = path.string();
  std::vector<std::filesystem::path> chain;
  toml::table root = parse_with_parents(text, path, &chain);
  const auto study = take_study(root, path, variant);
  if (study && variant.empty()) {
    throw ScenarioError(file + ": a study (variants: " + study->variant_names() +
                        "): run one with --variant NAME, or all with: cliprepro study " + file);
  }
  const TomlReader r(file);
  Scenario s;
  s.path = path;
  s.variant = variant;
  s.name = path.stem().string();
  s.text = text;
  if (chain.size() > 1 || study) {  // the log records the scenario as resolved, and its sources
    std::ostringstream resolved;
    resolved << "# " << path.string();
    if (study) resolved << " variant " << variant;
    for (size_t i = 1; i < chain.size(); ++i) resolved << " extends " << chain[i].string();
    resolved << ", resolved:\n" << root << "\n";
    s.text = resolved.str();
  }

  for (const auto& [key, node] : root) {
    const std::string name(key.str());
    if (is_section(name)) {
      const auto* table = node.as_table();
      if (table == nullptr) r.fail(node, "'" + name + "' must be a table ([" + name + "])");
      for (const auto& [k2, n2] : *table) {
        const auto* k = find_scenario_key(name, std::string(k2.str()));
        if (k == nullptr)
          r.fail_at(k2.source(), "unknown key '" + std::string(k2.str()) + "' in [" + name + "]");
        r.set(*k, n2, s);
      }
      for (const auto& k : scenario_keys()) {
        if (k.section == name && k.has(kRequired) && !table->contains(k.key))
          r.fail(node, "[" + name + "] needs '" + k.key + "': " + k.doc);
      }
    } else if (const auto* k = find_scenario_key("", name)) {
      r.set(*k, node, s);
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
  // The schedule at the launch's world size (torchrun's WORLD_SIZE), where the data's size is
  // known now (a CSV list's or a replayed log's is known when the data is opened: the trainer
  // checks those).
  if (t.data.dataset_type == DatasetType::kSynthetic ||
      t.data.dataset_type == DatasetType::kWebdataset) {
    TrainConfig launched = t;
    launched.dist.world_size = std::max(1, dist::launch_world_size());
    const int64_t batches = launched.batches_per_epoch();
    if (batches < 1) {
      r.fail(node("", "train-num-samples"),
             "train-num-samples " + std::to_string(t.data.train_num_samples) +
                 " holds no batch of batch-size " + std::to_string(t.batch_size) +
                 " x world size " + std::to_string(launched.dist.world_size));
    } else if (batches % t.optim.accum_freq != 0) {
      // OpenCLIP would forward the epoch's leftover micro-batches and drop them.
      r.fail(node("", "accum-freq"), "accum-freq " + std::to_string(t.optim.accum_freq) +
                                         " must divide the " + std::to_string(batches) +
                                         " batches per epoch (train-num-samples // (batch-size x "
                                         "world size " +
                                         std::to_string(launched.dist.world_size) + "))");
    } else if (t.flip.step > launched.total_steps()) {
      r.fail(node("debug", "flip-step"), "[debug] flip-step " + std::to_string(t.flip.step) +
                                             " is past the run's last step " +
                                             std::to_string(launched.total_steps()));
    }
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
  if (s.train.model.ends_with(".json"))
    s.train.model = from_scenario(written_in(root.get("model"), path), s.train.model);
  check_precision_overrides(s.train, r, node);
  auto& det = s.train.determinism;
  det = with_portable_pins(det);  // written out, so that the resolved config shows them
  if (det.portable) {
    for (auto [key, value, pin] : {std::tuple{"cpu-isa", det.cpu_isa, kPortableCpuIsa},
                                   std::tuple{"mkl-cbwr", det.mkl_cbwr, kPortableMklCbwr}}) {
      if (value != pin) {
        r.fail(node("determinism", key),
               std::string("portable = true pins ") + key + " to \"" + pin + "\" (the CPU-" +
                   "independent bits need it); set portable = false to choose another");
      }
    }
  }
  auto& data = s.train.data;
  if (data.dataset_type != DatasetType::kSynthetic && data.train_data.empty()) {
    r.fail(*root.get("dataset-type"),
           "dataset-type '" + std::string(enum_name(data.dataset_type)) + "' needs train-data");
  }
  // A CSV list or a replayed log is relative to the scenario, so a scenario and its data can
  // move together (WebDataset shard lists are URLs or brace patterns, used as written, as
  // OpenCLIP does).
  if (data.dataset_type == DatasetType::kCsv || data.dataset_type == DatasetType::kReplay)
    data.train_data = from_scenario(written_in(root.get("train-data"), path), data.train_data);
  // A golden keeps the full tensors [golden] names and the digests [log] asks for.
  LogSelection golden = s.log;
  golden.full_steps = s.golden.selection.full_steps;
  golden.full_tensors = s.golden.selection.full_tensors;
  golden.origin = "[golden]";
  s.golden.selection = golden;
  return s;
}

}  // namespace cliprepro
