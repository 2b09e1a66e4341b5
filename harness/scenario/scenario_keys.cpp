// The harness's scenario keys (name, description, [log], [golden]), one row each, and the whole
// table: these rows plus the trainer's (src/train/train_config_keys.cpp).
#include "harness/scenario/scenario.h"
#include "harness/scenario/step_spec_codec.h"

#include <algorithm>
#include <cctype>

namespace cliprepro {

template <>
struct EnumNames<Compression> {
  static const std::vector<std::pair<std::string_view, Compression>>& get() {
    static const std::vector<std::pair<std::string_view, Compression>> k = {
        {"none", Compression::kNone}, {"gzip", Compression::kGzip}};
    return k;
  }
};

template <>
struct ValueCodec<Tolerance> {
  static constexpr ValueType kType = ValueType::kString;
  static Tolerance from(const ConfigValue& v, const std::string&) {
    return parse_tolerance(std::get<std::string>(v));
  }
  static nlohmann::json to_json(const Tolerance& v) { return v.text(); }
};

using ToleranceOverrides = std::vector<std::pair<std::string, Tolerance>>;
template <>
struct ValueCodec<ToleranceOverrides> {
  static constexpr ValueType kType = ValueType::kStrings;
  static ToleranceOverrides from(const ConfigValue& v, const std::string&) {
    ToleranceOverrides out;
    for (const auto& s : std::get<std::vector<std::string>>(v))
      out.push_back(parse_tolerance_override(s));
    return out;
  }
  static nlohmann::json to_json(const ToleranceOverrides& v) {
    auto j = nlohmann::json::array();
    for (const auto& [glob, tol] : v) j.push_back(glob + "=" + tol.text());
    return j;
  }
};

namespace {

using checks::at_least;
using checks::greater_than;

#define KEY(...) CLIPREPRO_KEY(Scenario, __VA_ARGS__)

Check<std::string> file_stem() {
  return [](const std::string& v) { return scenario_name_problem(v); };
}

std::vector<ConfigKey<Scenario>> harness_top_keys() {
  return {
      KEY("", "name", name, kPlain,
          "log file name (`<out>/<name>.h5`) and label: 1–128 of `A-Z a-z 0-9 _ . -`, not "
          "starting with `.` or `-`",
          file_stem(), "file stem"),
      KEY("", "description", description, kPlain, "free text"),
  };
}

std::vector<ConfigKey<Scenario>> harness_section_keys() {
  return {
      KEY("log", "digest-every", log.digest_every, kPlain,
          "digest every tensor at steps divisible by N", greater_than(0)),
      KEY("log", "full-steps", log.full_steps, kPlain,
          "steps at which full tensors are stored: integers (`-1` = last step) or strings "
          "`\"a:b\"` (a ≤ s < b), `\"a:\"` (a to the end), `\"a:b:k\"` (stride k)"),
      KEY("log", "full-tensors", log.full_tensors, kPlain,
          "globs on tensor names (`*` matches across `/`, `?` one character), e.g. "
          "`\"params/*\"`, `\"grads/visual.layer4.*\"`; a glob that matches no tensor is named in "
          "a "
          "warning at the first training step"),
      KEY("log", "activation-samples", log.activation_samples, kPlain,
          ">0: `activations/*` are digested and stored for the first k samples of the batch only",
          at_least(0)),
      KEY("log", "compression", log.compression, kPlain,
          "`gzip`: deflate level 4 + shuffle on full tensors"),
      KEY("log", "queue-mib", log.queue_mib, kPlain,
          "bound of the writer queue in MiB; when full, training waits for the writer",
          greater_than(0)),
      KEY("log", "flush-seconds", log.flush_seconds, kPlain,
          "the writer flushes queued steps to disk at least this often (0 = after every step); a "
          "killed run keeps every step flushed before it died",
          at_least(0)),
      KEY("golden", "path", golden.path, kScenarioPath | kRequired,
          "the golden file (usually under `golden/`), relative to the scenario", {},
          "— (required)"),
      KEY("golden", "full-steps", golden.selection.full_steps, kPlain,
          "as in `[log]`: full tensors the golden keeps; digests follow `[log]`"),
      KEY("golden", "full-tensors", golden.selection.full_tensors, kPlain, "as in `[log]`"),
      KEY("golden", "tolerance", golden.tolerance.fallback, kPlain,
          "policy applied when the run's environment fingerprint differs from the golden's "
          "(`docs/compare.md`); with the same fingerprint the check is always bitwise"),
      KEY("golden", "tolerance-for", golden.tolerance.overrides, kPlain,
          "`\"GLOB=POLICY\"` per tensor family overrides of `tolerance`; the first matching glob "
          "wins"),
  };
}

}  // namespace

std::string scenario_name_problem(const std::string& name) {
  // One file stem inside --out: no separators, no "..", nothing a shell or HDF5 tool chokes on.
  const bool chars_ok = std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
  if (name.empty() || name.size() > 128 || !chars_ok || name.front() == '.' || name.front() == '-')
    return "must be one file stem: 1-128 characters of A-Z a-z 0-9 _ . -, not starting with . or -";
  return "";
}

const std::vector<ConfigKey<Scenario>>& scenario_keys() {
  static const std::vector<ConfigKey<Scenario>> keys = [] {
    auto all = harness_top_keys();
    for (const auto& k : train_config_keys())
      all.push_back(
          lift_key<Scenario>(k, "train.", [](Scenario& s) -> TrainConfig& { return s.train; }));
    for (auto& k : harness_section_keys()) all.push_back(std::move(k));
    return all;
  }();
  return keys;
}

nlohmann::json Scenario::resolved() const {
  auto j = keys_json(scenario_keys(), *this);
  j["total-steps"] = train.total_steps();
  j["steps-per-epoch"] = train.steps_per_epoch();
  j["world-size"] = train.dist.world_size;
  return j;
}

}  // namespace cliprepro
