#include "harness/golden.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "harness/env_fingerprint.h"

namespace cliprepro {
namespace {

nlohmann::json parse_fingerprint(const LogReader& log) {
  auto fp = nlohmann::json::parse(log.attr("fingerprint"), nullptr, false);
  return fp.is_object() ? fp : nlohmann::json::object();  // absent or unreadable: no key
}

}  // namespace

void require_golden(const Scenario& s) {
  if (s.golden.path.empty()) {
    throw GoldenMissing(s.path.string() + ": scenario has no [golden] section");
  }
  if (!std::filesystem::exists(s.golden.path)) {
    throw GoldenMissing("golden " + s.golden.path.string() +
                        " does not exist; create it with: cliprepro golden bless " +
                        s.path.string());
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
    // POSIX rename: atomic within a file system.
    if (std::rename(tmp.c_str(), s.golden.path.c_str()) != 0) {
      throw std::runtime_error("cannot move " + tmp.string() + " to " + s.golden.path.string() +
                               ": " + std::strerror(errno));
    }
    r.log_path = s.golden.path;
    return r;
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
}

CompareResult check_golden(const std::filesystem::path& log, const Scenario& s) {
  require_golden(s);
  LogReader run(log), golden(s.golden.path);
  CompareOptions opts;
  opts.b_is_subset = true;
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
