#include "harness/compare/golden.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <set>

#include "harness/compare/golden_text.h"
#include "harness/log/digest.h"
#include "harness/log/env_fingerprint.h"
#include "src/safe_file.h"

namespace cliprepro {
namespace {

nlohmann::json parse_fingerprint(const LogReader& log) {
  auto fp = nlohmann::json::parse(log.attr("fingerprint"), nullptr, false);
  return fp.is_object() ? fp : nlohmann::json::object();  // absent or unreadable: no key
}

nlohmann::json fingerprint_of(const std::filesystem::path& log) {
  return parse_fingerprint(LogReader(log));
}

}  // namespace

void write_golden_text(const std::filesystem::path& golden) {
  // LogReader reads it without its companion: this rewrites the companion.
  write_file_atomically(companion_path(golden),
                        golden_text(LogReader(golden, LogReader::Companion::kIgnore)),
                        "text companion");
}

namespace {

std::string read_companion(const std::filesystem::path& golden) {
  const auto path = companion_path(golden);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw GoldenMissing("golden " + golden.string() + " has no text companion " + path.string() +
                        "; write it with: cliprepro golden text " + golden.string());
  }
  return read_regular_file(path, "text companion");
}

}  // namespace

void require_golden_sha256_record(const std::filesystem::path& golden) {
  const std::string recorded = recorded_sha256(read_companion(golden));
  if (recorded.empty()) {
    throw std::runtime_error(companion_path(golden).string() +
                             " records no sha256 of the golden (written by an older cliprepro): "
                             "rewrite it with: cliprepro golden text " +
                             golden.string());
  }
}

void check_golden_text(const LogReader& golden) {
  const auto path = companion_path(golden.path());
  if (read_companion(golden.path()) != golden_text(golden)) {
    throw std::runtime_error(path.string() + " does not describe " + golden.path().string() +
                             " (one was re-blessed or edited without the other); re-bless, or "
                             "rewrite the text from the binary with: cliprepro golden text " +
                             golden.path().string());
  }
}

std::string environment_id(const nlohmann::json& key) {
  const std::string text = key.dump();
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                (unsigned long long)bytes_digest(text.data(), text.size()));
  return "env-" + std::string(hex, 8);
}

std::filesystem::path environment_variant(const std::filesystem::path& p,
                                          const nlohmann::json& key) {
  return p.parent_path() / (p.stem().string() + "." + environment_id(key) + p.extension().string());
}

std::filesystem::path select_golden(const std::filesystem::path& log, const Scenario& s) {
  require_golden(s);
  const auto keyed = environment_variant(s.golden.path, fingerprint_key(fingerprint_of(log)));
  return std::filesystem::exists(keyed) ? keyed : s.golden.path;
}

void require_golden(const Scenario& s) {
  if (s.golden.path.empty()) {
    throw GoldenMissing(s.path.string() +
                        ": scenario has no [golden] section (to train and log without a check, "
                        "as for an imported OpenCLIP command: cliprepro run --no-golden)");
  }
  if (!std::filesystem::exists(s.golden.path)) {
    throw GoldenMissing("golden " + s.golden.path.string() +
                        " does not exist; create it with: cliprepro golden bless " +
                        scenario_argument(s));
  }
}

RunResult bless_golden(const Scenario& s, bool progress) {
  if (s.golden.path.empty())
    throw GoldenMissing(s.path.string() + ": scenario has no [golden] section");
  auto tmp = s.golden.path;
  tmp += ".tmp-" + std::to_string(getpid());
  RunOptions opts;
  opts.log_path = tmp;
  opts.selection = s.golden.selection;
  opts.progress = progress;
  opts.mode = WriteMode::kBuffered;
  opts.selection.stats = false;  // goldens check bits; statistics would only make them larger
  try {
    RunResult r = train_and_log(s, opts);
    // The run's own fingerprint (with the scenario's pins applied) decides where it goes.
    const auto fp = fingerprint_of(tmp);
    const bool primary = !std::filesystem::exists(s.golden.path) ||
                         fingerprint_differences(fp, fingerprint_of(s.golden.path)).empty();
    const auto dest =
        primary ? s.golden.path : environment_variant(s.golden.path, fingerprint_key(fp));
    // POSIX rename: atomic within a file system.
    if (std::rename(tmp.c_str(), dest.c_str()) != 0) {
      throw std::runtime_error("cannot move " + tmp.string() + " to " + dest.string() + ": " +
                               std::strerror(errno));
    }
    write_golden_text(dest);
    r.log_path = dest;
    return r;
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
}

void check_golden_covers(const LogReader& run, const LogReader& golden) {
  const std::string g = "golden " + golden.path().string();
  if (!golden.complete()) {
    throw std::runtime_error(
        g + " was not closed cleanly (status '" + golden.attr("status") + "', last complete step " +
        std::to_string(golden.last_complete_step()) + "): it proves nothing; bless it again");
  }
  if (golden.attr("last_step") != std::to_string(golden.last_complete_step())) {
    throw std::runtime_error(g + " is inconsistent: its last_step attribute says " +
                             golden.attr("last_step") + ", /progress says " +
                             std::to_string(golden.last_complete_step()));
  }
  if (golden.last_complete_step() != run.last_complete_step()) {
    throw std::runtime_error(g + " ends at step " + std::to_string(golden.last_complete_step()) +
                             ", the run at step " + std::to_string(run.last_complete_step()) +
                             ": it was blessed for another schedule; bless it again");
  }
  // Every digest of the run must be vouched for: a golden lacking a tensor (blessed before it
  // was logged, or cut down) would otherwise pass it unchecked.
  std::vector<std::string> absent;
  int64_t covered = 0;
  for (const auto& [name, sr] : run.series()) {
    if (sr.steps.empty() && sr.full_steps.empty()) continue;  // nothing logged to vouch for
    const TensorSeries* sg = golden.find(name);
    if (sg == nullptr) {
      absent.push_back(name);
      continue;
    }
    const std::set<int64_t> has(sg->steps.begin(),
                                sg->steps.end());  // a hostile file may be unsorted
    std::vector<int64_t> lacking;
    std::copy_if(sr.steps.begin(), sr.steps.end(), std::back_inserter(lacking),
                 [&](int64_t step) { return !has.contains(step); });
    if (!lacking.empty()) {
      throw std::runtime_error(g + " lacks " + std::to_string(lacking.size()) + " of the " +
                               std::to_string(sr.steps.size()) + " digests the run holds for " +
                               name + " (first: step " + std::to_string(lacking.front()) +
                               "): it cannot vouch for the run; re-bless it");
    }
    covered += int64_t(sr.steps.size());
  }
  if (!absent.empty()) {
    std::string names;
    for (size_t i = 0; i < absent.size() && i < 5; ++i) names += (i ? ", " : "") + absent[i];
    if (absent.size() > 5) names += ", … (" + std::to_string(absent.size() - 5) + " more)";
    throw std::runtime_error(g + " lacks " + std::to_string(absent.size()) + " of the run's " +
                             std::to_string(run.series().size()) + " tensors (" + names +
                             "): it cannot vouch for them; re-bless it (cliprepro golden bless)");
  }
  if (covered == 0)
    throw std::runtime_error(g + " holds no digest of any tensor of the run: it proves nothing");
}

CompareResult check_golden(const std::filesystem::path& log, const Scenario& s) {
  const auto golden_path = select_golden(log, s);
  require_golden_sha256_record(golden_path);
  LogReader run(log), golden(golden_path);  // the golden's hash checked before HDF5 opens it
  check_golden_text(golden);
  check_golden_covers(run, golden);
  CompareOptions opts;
  opts.b_is_subset = true;
  opts.verify = true;  // a corrupt golden (or run log) never matches
  const auto fp_run = parse_fingerprint(run), fp_golden = parse_fingerprint(golden);
  const auto differences = fingerprint_differences(fp_run, fp_golden);
  if (differences.empty()) {
    opts.tolerance_reason = "same environment fingerprint as the golden: bitwise";
  } else {
    opts.tolerance = s.golden.tolerance;
    std::string what;
    for (const auto& d : differences) what += (what.empty() ? "" : "; ") + d;
    opts.tolerance_reason = "environment fingerprint differs from the golden's (" + what +
                            "): the scenario's tolerance " + opts.tolerance.text();
  }
  return compare_logs(run, golden, opts);
}

}  // namespace cliprepro
