#include "harness/scenario/study.h"
#include "harness/scenario/step_spec_codec.h"

#include <algorithm>
#include <type_traits>
#include <utility>
#include <vector>

#include "harness/scenario/scenario.h"
#include "harness/scenario/toml_reader.h"

namespace cliprepro {
namespace {

#define STUDY_KEY(...) CLIPREPRO_KEY(Study, __VA_ARGS__)
#define LAUNCH_KEY(...) CLIPREPRO_KEY(StudyVariant, __VA_ARGS__)
#define REPORT_KEY(...) CLIPREPRO_KEY(StudyReport, __VA_ARGS__)

template <class Root>
const ConfigKey<Root>* find_row(const std::vector<ConfigKey<Root>>& keys, const std::string& key) {
  for (const auto& k : keys)
    if (k.key == key) return &k;
  return nullptr;
}

// A table's entries in the order the file wrote them (toml++ iterates them sorted by key).
template <class Table,
          class Node = std::conditional_t<std::is_const_v<Table>, const toml::node, toml::node>>
std::vector<std::pair<const toml::key*, Node*>> in_file_order(Table& t) {
  std::vector<std::pair<const toml::key*, Node*>> entries;
  for (auto&& [key, node] : t) entries.emplace_back(&key, &node);
  std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return a.first->source().begin.line < b.first->source().begin.line;
  });
  return entries;
}

// A variant name read from a report's key must name a variant of the study.
void require_variant(const TomlReader& r, const toml::node& n, const Study& s,
                     const std::string& what, const std::string& name) {
  if (s.find(name) == nullptr)
    r.fail(n, what + " names no variant: '" + name + "' (variants: " + s.variant_names() + ")");
}

// [reports.NAME] tables, in file order; without them the one report of every variant.
void take_reports(const toml::table& root, const TomlReader& r, Study& s) {
  const toml::node* node = root.get(kReportsTable);
  if (node == nullptr) {
    StudyReport all;
    all.title = "Study " + s.name + ": every variant against " + s.reference;
    all.reference = s.reference;
    all.noise_floor = s.noise_floor;
    for (const auto& v : s.variants)
      if (v.name != s.reference) all.variants.push_back(v.name);
    s.reports.push_back(std::move(all));
    return;
  }
  const toml::table* t = node->as_table();
  if (t == nullptr) r.fail(*node, "'reports' must be tables ([reports.NAME])");
  for (const auto& [key_ptr, rn_ptr] : in_file_order(*t)) {
    const toml::key& key = *key_ptr;
    const toml::node& rn = *rn_ptr;
    StudyReport rep;
    rep.name = std::string(key.str());
    const std::string where = "[reports." + rep.name + "]";
    const toml::table* rt = rn.as_table();
    if (rt == nullptr) r.fail(rn, "report '" + rep.name + "' must be a table (" + where + ")");
    if (const auto problem = scenario_name_problem(rep.name); !problem.empty())
      r.fail_at(key.source(), "report name '" + rep.name + "' " + problem);
    for (auto&& [k, n] : *rt) {
      const auto* row = find_row(report_keys(), std::string(k.str()));
      if (row == nullptr)
        r.fail_at(k.source(), "unknown key '" + std::string(k.str()) + "' in " + where);
      r.set(*row, n, rep);
    }
    for (const auto& k : report_keys())
      if (k.has(kRequired) && !rt->contains(k.key))
        r.fail(rn, where + " needs '" + k.key + "': " + k.doc);
    if (rep.reference.empty()) rep.reference = s.reference;
    if (rep.noise_floor.empty() && rep.reference == s.reference) rep.noise_floor = s.noise_floor;
    if (rep.title.empty())
      rep.title = "Study " + s.name + ": " + rep.name + " against " + rep.reference;
    if (const toml::node* n = rt->get("reference"))
      require_variant(r, *n, s, "'reference'", rep.reference);
    if (const toml::node* n = rt->get("noise-floor"))
      require_variant(r, *n, s, "'noise-floor'", rep.noise_floor);
    if (!rep.noise_floor.empty() && rep.noise_floor == rep.reference)
      r.fail(rn, where + ": the noise floor cannot be the reference itself");
    const toml::array& listed = *rt->get("variants")->as_array();
    for (size_t i = 0; i < rep.variants.size(); ++i)
      require_variant(r, *listed.get(i), s, "'variants'", rep.variants[i]);
    s.reports.push_back(std::move(rep));
  }
}

}  // namespace

const std::vector<ConfigKey<Study>>& study_keys() {
  static const std::vector<ConfigKey<Study>> keys = {
      STUDY_KEY(
          "study", "name", name, kPlain,
          "names the variants' logs `<name>-<variant>.h5` (default: the base's `name`, else the "
          "file stem; a variant's own `name` wins)",
          [](const std::string& v) { return scenario_name_problem(v); }, "file stem"),
      STUDY_KEY("study", "reference", reference, kRequired,
                "the variant every other is reported against", {}, "— (required)"),
      STUDY_KEY("study", "noise-floor", noise_floor, kPlain,
                "a variant that is the reference under a change of no semantics (the shipped "
                "studies: lr × (1 + 2^-20)); the report then states every drift as a multiple of "
                "its drift"),
      STUDY_KEY("study", "golden-dir", golden_dir, kScenarioPath,
                "each variant's golden is `<golden-dir>/<variant>.h5` (+ its text companion), "
                "relative to the file",
                {}, "none: the variants run without goldens (a study checked by its reports)"),
      STUDY_KEY(
          "study", "prepare", prepare, kPlain,
          "a Python script (relative to the file) and its arguments, run by `cliprepro "
          "study` with the project's Python in the file's directory before any variant, "
          "when `prepare-creates` does not exist: data the variants read (the seed study's "
          "images)",
          [](const std::vector<std::string>& v) {
            return v.empty() ? std::string("needs the script to run") : std::string();
          },
          "none"),
      STUDY_KEY("study", "prepare-creates", prepare_creates, kScenarioPath,
                "a path `prepare` writes (relative to the file); its existence means prepared", {},
                "— (required with `prepare`)"),
  };
  return keys;
}

const std::vector<ConfigKey<StudyVariant>>& variant_launch_keys() {
  static const std::vector<ConfigKey<StudyVariant>> keys = {
      LAUNCH_KEY("variants.NAME", "nproc", nproc, kPlain,
                 "ranks `cliprepro study` launches the variant with (through torchrun "
                 "`--no-python`; > 1 needs torchrun in the project's Python). At most 64: "
                 "processes on one machine",
                 checks::between(1, 64)),
  };
  return keys;
}

const std::vector<ConfigKey<StudyReport>>& report_keys() {
  static const std::vector<ConfigKey<StudyReport>> keys = {
      REPORT_KEY("reports.NAME", "title", title, kPlain, "the report's title", {},
                 "Study <study>: <NAME> against <reference>"),
      REPORT_KEY("reports.NAME", "reference", reference, kPlain,
                 "the variant the others are reported against", {}, "[study] reference"),
      REPORT_KEY("reports.NAME", "noise-floor", noise_floor, kPlain,
                 "the noise-floor variant of this reference", {},
                 "[study] noise-floor if the reference is [study]'s"),
      REPORT_KEY("reports.NAME", "variants", variants, kRequired,
                 "the variants reported against the reference, in this order; the report is "
                 "`<out>/NAME/report.{md,html}` and its findings a section of `<out>/findings.md`",
                 {}, "— (required)"),
      REPORT_KEY("reports.NAME", "attribute-steps", attribute_steps, kPlain,
                 "teacher-forced precision attribution (`cliprepro attribute`) of each variant "
                 "against the reference at these steps (as `full-steps`; `-1` = last), written "
                 "to `<out>/NAME/attribution/<variant>/attribution.{md,html,json}`, its findings "
                 "in the report's section of `findings.md`. The reference must log every tensor "
                 "in full at each step and the one before (`[log] full-tensors = [\"*\"]`)",
                 {}, "none"),
      REPORT_KEY("reports.NAME", "attribute-rank", attribute_rank, kPlain,
                 "with `attribute-steps`: rank the module groups too (`attribute --rank`)"),
  };
  return keys;
}

const StudyVariant* Study::find(const std::string& variant) const {
  for (const auto& v : variants)
    if (v.name == variant) return &v;
  return nullptr;
}

std::string Study::variant_names() const {
  std::string s;
  for (const auto& v : variants) s += (s.empty() ? "" : ", ") + v.name;
  return s;
}

bool Study::has_named_reports() const { return !reports.empty() && !reports.front().name.empty(); }

std::optional<Study> take_study(toml::table& root, const std::filesystem::path& path,
                                const std::string& variant) {
  const TomlReader r(path.string());
  toml::node* study_node = root.get(kStudySection);
  toml::node* variants_node = root.get(kVariantsTable);
  if (study_node == nullptr && variants_node == nullptr) {
    if (!variant.empty())
      throw ScenarioError(path.string() + ": not a study (no [variants]): there is no variant '" +
                          variant + "'");
    return std::nullopt;
  }
  if (study_node == nullptr) r.fail(*variants_node, "[variants] needs a [study] section");
  if (variants_node == nullptr) r.fail(*study_node, "[study] needs [variants.NAME] tables");
  toml::table* st = study_node->as_table();
  toml::table* vt = variants_node->as_table();
  if (st == nullptr) r.fail(*study_node, "'study' must be a table ([study])");
  if (vt == nullptr) r.fail(*variants_node, "'variants' must be tables ([variants.NAME])");

  Study s;
  s.path = path;
  s.name = path.stem().string();
  if (const toml::node* n = root.get("name"); n != nullptr && n->is_string())
    s.name = n->as_string()->get();  // the base's name names the study, unless [study] does
  for (auto&& [key, node] : *st) {
    const auto* k = find_row(study_keys(), std::string(key.str()));
    if (k == nullptr)
      r.fail_at(key.source(), "unknown key '" + std::string(key.str()) + "' in [study]");
    r.set(*k, node, s);
  }
  for (const auto& k : study_keys()) {
    if (k.has(kRequired) && !st->contains(k.key))
      r.fail(*study_node, "[study] needs '" + k.key + "': " + k.doc);
  }
  for (const auto& [key_ptr, node_ptr] : in_file_order(*vt)) {
    const toml::key& key = *key_ptr;
    toml::node& node = *node_ptr;
    const std::string name(key.str());
    toml::table* t = node.as_table();
    if (t == nullptr)
      r.fail(node, "variant '" + name + "' must be a table ([variants." + name + "])");
    if (const auto problem = scenario_name_problem(name); !problem.empty())
      r.fail_at(key.source(), "variant name '" + name + "' " + problem);
    StudyVariant v;
    v.name = name;
    for (const auto& k : variant_launch_keys())
      if (const toml::node* n = t->get(k.key)) r.set(k, *n, v);
    s.variants.push_back(std::move(v));
  }
  for (const auto& [key, value] :
       {std::pair{"reference", &s.reference}, std::pair{"noise-floor", &s.noise_floor}}) {
    if (!value->empty() && s.find(*value) == nullptr) {
      r.fail(*st->get(key), "'" + std::string(key) + "' names no variant: '" + *value +
                                "' (variants: " + s.variant_names() + ")");
    }
  }
  if (s.prepare.empty() != s.prepare_creates.empty()) {
    r.fail(*study_node, s.prepare.empty() ? "'prepare-creates' needs 'prepare': the command that "
                                            "creates it"
                                          : "'prepare' needs 'prepare-creates': the path that "
                                            "says it has run");
  }
  take_reports(root, r, s);
  // A study's goldens are its golden-dir's: one [golden] path for every variant could not be meant.
  for (const toml::node* g : {root.at_path("golden.path").node(),
                              root.at_path("variants." + variant + ".golden.path").node()}) {
    if (g != nullptr && !variant.empty())
      r.fail(*g,
             "a study's goldens are <golden-dir>/<variant>.h5 ([study] golden-dir), not [golden] "
             "path");
  }
  if (variant.empty()) return s;
  if (s.find(variant) == nullptr) {
    throw ScenarioError(path.string() + ": the study has no variant '" + variant +
                        "' (variants: " + s.variant_names() + ")");
  }
  toml::table chosen = std::move(*vt->get(variant)->as_table());
  for (const auto& k : variant_launch_keys()) chosen.erase(k.key);
  root.erase(kStudySection);
  root.erase(kVariantsTable);
  root.erase(kReportsTable);
  const bool named = chosen.contains("name");
  merge_into(root, std::move(chosen));
  if (!named) root.insert_or_assign("name", s.name + "-" + variant);
  if (s.golden_dir.empty()) return s;
  if (!root.contains("golden")) root.insert("golden", toml::table{});
  if (toml::table* g = root.get("golden")->as_table()) {
    // golden-dir is resolved already; [golden] path is resolved again, from the study's directory
    // (kept relative: the path is provenance in every log, and checkouts live anywhere). An
    // absolute golden-dir under a relative study path has no relative form: it stays absolute.
    const auto dir = path.parent_path();
    const auto golden = s.golden_dir / (variant + ".h5");
    const bool as_is = dir.empty() || (golden.is_absolute() && !dir.is_absolute());
    g->insert_or_assign("path", (as_is ? golden : golden.lexically_relative(dir)).string());
  }
  return s;
}

Study load_study(const std::filesystem::path& path) {
  std::vector<std::filesystem::path> chain;
  toml::table root = parse_with_parents(read_scenario_file(path), path, &chain);
  auto study = take_study(root, path, "");
  if (!study)
    throw ScenarioError(path.string() +
                        ": not a study (no [study] section and [variants.NAME] tables)");
  for (auto& v : study->variants) v.log_name = load_scenario(path, v.name).name;  // each parses
  return *study;
}

}  // namespace cliprepro
