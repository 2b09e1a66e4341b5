#include "harness/compare/bisect.h"

#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <stdexcept>

#include "harness/log/log_reader.h"
#include "harness/run/run_scenario.h"
#include "harness/scenario/scenario.h"

namespace cliprepro {
namespace {

// The newest <name>.checkpoints/step_<c>.safetensors beside the log with c < before.
std::pair<int64_t, std::filesystem::path> nearest_checkpoint(const std::filesystem::path& log,
                                                             const std::string& name,
                                                             int64_t before) {
  const auto dir = log.parent_path() / (name + ".checkpoints");
  std::pair<int64_t, std::filesystem::path> best{0, {}};
  if (!std::filesystem::is_directory(dir)) return best;
  static const std::regex kName(R"(step_(\d+)\.safetensors)");
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::smatch m;
    const std::string f = e.path().filename().string();
    if (!std::regex_match(f, m, kName)) continue;
    const int64_t step = std::stoll(m[1]);
    if (step < before && step > best.first) best = {step, e.path()};
  }
  return best;
}

BisectSide rerun(const std::filesystem::path& log_path, int64_t through,
                 const std::filesystem::path& out_dir) {
  const LogReader log(log_path);
  if (!log.attr("recorded_by").empty()) {
    throw std::runtime_error(
        log_path.string() +
        ": a recording of OpenCLIP's trainer, which bisect cannot re-run; replay it as a "
        "cliprepro run (cliprepro import-openclip --replay " +
        log_path.string() + " --out R.toml; cliprepro run R.toml --no-golden) and bisect that");
  }
  if (log.attr("scenario_toml").empty()) {
    throw std::runtime_error(log_path.string() + ": no scenario_toml attribute: not a run log");
  }
  // Exactly the scenario that was run, with relative paths resolved from where it lived.
  Scenario s = parse_scenario(log.attr("scenario_toml"), log.attr("scenario_path"));
  if (nlohmann::json::parse(log.attr("resolved_config")).value("world-size", int64_t(1)) != 1) {
    throw std::runtime_error(log_path.string() +
                             ": bisect re-runs single-process runs only (this log is one rank "
                             "of a distributed run)");
  }
  BisectSide side;
  side.log = log_path;
  std::tie(side.from_step, side.checkpoint) = nearest_checkpoint(log_path, s.name, through);
  s.train.checkpoint.resume = side.checkpoint.string();
  s.train.checkpoint.stop_after_step = through;
  s.train.checkpoint.save_every_steps = 0;
  s.train.checkpoint.save_frequency = 0;
  s.log.digest_every = 1;
  s.log.full_steps = {StepSpec{side.from_step, through + 1, 1}};
  s.log.full_tensors = {"*"};
  s.log.activation_samples = 0;
  s.golden.path.clear();
  std::filesystem::create_directories(out_dir);
  RunOptions opts;
  opts.log_path = out_dir / (s.name + ".h5");
  opts.selection = s.log;
  opts.progress = false;
  side.rerun_log = train_and_log(s, opts).log_path;
  return side;
}

}  // namespace

BisectResult bisect_logs(const std::filesystem::path& a, const std::filesystem::path& b,
                         const std::filesystem::path& work_dir, const CompareOptions& opts) {
  BisectResult r;
  {
    const LogReader ra(a), rb(b);
    // Before any re-run writes gigabytes: a log cut short differs from a whole one by its length,
    // which no re-run explains.
    for (const LogReader* log : {&ra, &rb}) {
      if (const std::string why = log->unclean_reason(); !why.empty()) {
        throw std::runtime_error(log->path().string() + " " + why +
                                 ": bisect needs two logs that ran to their end (compare covers "
                                 "the steps both hold)");
      }
    }
    if (ra.last_complete_step() != rb.last_complete_step()) {
      throw std::runtime_error(a.string() + " ends at step " +
                               std::to_string(ra.last_complete_step()) + ", " + b.string() +
                               " at step " + std::to_string(rb.last_complete_step()) +
                               ": runs of different lengths; bisect needs the same schedule");
    }
    const CompareResult c = compare_logs(ra, rb, opts);
    if (c.equal()) return r;
    if (c.diffs.front().first_step < 0) {
      throw std::runtime_error("the logs differ in structure, not in a step (" +
                               c.diffs.front().name + ": " + c.diffs.front().detail +
                               "): nothing to re-run");
    }
    r.divergence_step = c.diffs.front().first_step;
    r.divergence_tensor = c.diffs.front().name;
  }
  r.a = rerun(a, r.divergence_step, work_dir / "a");
  r.b = rerun(b, r.divergence_step, work_dir / "b");
  const LogReader ra(r.a.rerun_log), rb(r.b.rerun_log);
  r.rerun = compare_logs(ra, rb, opts);
  return r;
}

std::string format_bisect(const BisectResult& r) {
  std::ostringstream o;
  if (r.divergence_step < 0) {
    o << "MATCH: the logs do not diverge; nothing to bisect\n";
    return o.str();
  }
  o << "logs diverge at step " << r.divergence_step << " (" << r.divergence_tensor << ")\n";
  for (const auto* s : {&r.a, &r.b}) {
    o << "re-ran " << s->log.filename().string() << " "
      << (s->checkpoint.empty() ? std::string("from the start")
                                : "from checkpoint step " + std::to_string(s->from_step))
      << " through step " << r.divergence_step
      << ", every tensor in full: " << s->rerun_log.string() << "\n";
  }
  if (r.rerun.equal()) {
    o << "the re-runs do NOT differ through step " << r.divergence_step
      << ": the original runs are not reproducible (same inputs, different bits)\n";
    return o.str();
  }
  const TensorDiff& d = r.rerun.diffs.front();
  o << "first differing tensor in execution order: " << d.name << " (step " << d.first_step
    << ", phase " << d.phase << ", " << reason_name(d.reason) << ")";
  if (d.first_element >= 0) {
    o << ", " << d.elements_differing << " element(s) differ, first at flat index "
      << d.first_element << ", max abs error " << d.max_abs_err;
  }
  o << "\n";
  if (d.first_step != r.divergence_step) {
    o << "note: the re-runs part at step " << d.first_step << ", not at step " << r.divergence_step
      << " as the original logs do\n";
  }
  return o.str();
}

}  // namespace cliprepro
