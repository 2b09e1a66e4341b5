#include "harness/cli/study_command.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <map>
#include <sstream>
#include <stdexcept>

#include "harness/cli/commands.h"
#include "harness/cli/process.h"
#include "harness/cli/study_reports.h"
#include "harness/report/markup.h"
#include "harness/run/interrupt.h"
#include "harness/run/run_scenario.h"
#include "harness/scenario/study.h"
#include "src/project_python.h"
#include "src/safe_file.h"

namespace cliprepro::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct Job {
  const StudyVariant* variant = nullptr;
  std::vector<std::string> argv;
  std::filesystem::path output;  // the variant's stdout + stderr
  pid_t pid = -1;
  Clock::time_point start;
  double seconds = 0;
  int exit_code = -1;
};

// Multi-rank variants go through torchrun from the project's Python; say what is missing first.
void require_torchrun(const std::string& python, const Study& study) {
  const std::string cmd = "\"" + python + "\" -c \"import torch.distributed.run\" >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    std::string multi;
    for (const auto& v : study.variants)
      if (v.nproc > 1) multi += (multi.empty() ? "" : ", ") + v.name;
    throw std::runtime_error("variants " + multi + " need torchrun, and '" + python +
                             "' cannot import torch.distributed.run: install the project's "
                             "Python (bash scripts/setup.sh) or set CLIPREPRO_PYTHON");
  }
}

std::vector<std::string> variant_argv(const Study& study, const StudyVariant& v, const StudyArgs& a,
                                      const std::string& python,
                                      const std::filesystem::path& out_dir) {
  std::vector<std::string> argv;
  if (v.nproc > 1) {
    argv = {python,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            std::to_string(v.nproc),
            "--no-python"};
  }
  argv.push_back(self_exe());
  if (a.bless) {
    for (const char* s : {"golden", "bless"}) argv.push_back(s);
  } else {
    argv.push_back("run");
  }
  for (const std::string& s :
       {study.path.string(), std::string("--variant"), v.name, std::string("-q")})
    argv.push_back(s);
  if (!a.bless) {
    argv.push_back("--out");
    argv.push_back(out_dir.string());
    if (study.golden_dir.empty()) argv.push_back("--no-golden");
  }
  return argv;
}

// [study] prepare: the data the variants read, made once (while `prepare-creates` is missing).
void prepare(const Study& study, const std::string& python, const std::filesystem::path& runs_dir) {
  if (study.prepare.empty() || std::filesystem::exists(study.prepare_creates)) return;
  const auto dir =
      study.path.parent_path().empty() ? std::filesystem::path(".") : study.path.parent_path();
  std::vector<std::string> argv{python};
  argv.insert(argv.end(), study.prepare.begin(), study.prepare.end());
  const auto output = runs_dir / "prepare.out";
  std::printf("[study] %s: preparing %s\n", study.name.c_str(),
              study.prepare_creates.string().c_str());
  std::fflush(stdout);
  if (run_to_file(argv, output, dir) != 0 || !std::filesystem::exists(study.prepare_creates)) {
    std::string cmd;
    for (const auto& s : argv) cmd += (cmd.empty() ? "" : " ") + s;
    throw std::runtime_error(study.path.string() + ": [study] prepare (" + cmd + ", in " +
                             dir.string() + ") did not create " + study.prepare_creates.string() +
                             ":\n" + read_text(output));
  }
}

std::string verdict(int exit_code, bool checked) {
  if (exit_code == kExitMatch) return checked ? "match" : "done";
  // A variant stopped by the signal the study passed on (128 + SIGINT/SIGTERM).
  if (exit_code == 128 + SIGINT || exit_code == 128 + SIGTERM) return "interrupted";
  return exit_code == kExitDiffer ? "DIFFERS" : "ERROR";
}

std::string junit_xml(const std::string& study, const std::vector<Job>& jobs) {
  int failures = 0, errors = 0;
  double total = 0;
  for (const auto& j : jobs) {
    failures += j.exit_code == kExitDiffer;
    errors += j.exit_code != kExitMatch && j.exit_code != kExitDiffer;
    total += j.seconds;
  }
  std::ostringstream x;
  x << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"" << markup_escape(study)
    << "\" tests=\"" << jobs.size() << "\" failures=\"" << failures << "\" errors=\"" << errors
    << "\" time=\"" << total << "\">\n";
  for (const auto& j : jobs) {
    x << "  <testcase classname=\"" << markup_escape(study) << "\" name=\""
      << markup_escape(j.variant->name) << "\" time=\"" << j.seconds << "\"";
    if (j.exit_code == kExitMatch) {
      x << "/>\n";
      continue;
    }
    const char* tag = j.exit_code == kExitDiffer ? "failure" : "error";
    const std::string out = read_text(j.output);
    x << ">\n    <" << tag << " message=\"" << markup_escape(j.variant->name) << ": "
      << (j.exit_code == kExitDiffer ? "differs from its golden"
                                     : "exit " + std::to_string(j.exit_code))
      << "\">" << markup_escape(out) << "</" << tag << ">\n  </testcase>\n";
  }
  x << "</testsuite>\n";
  return x.str();
}

}  // namespace

int cmd_study(const StudyArgs& a) {
  const Study study = load_study(a.study);
  for (const auto& name : a.only) {
    if (study.find(name) == nullptr)
      throw std::runtime_error("--only " + name + ": no such variant in " + a.study.string() +
                               " (variants: " + study.variant_names() + ")");
  }
  if (a.bless && study.golden_dir.empty())
    throw std::runtime_error(a.study.string() +
                             ": the study has no goldens to bless ([study] golden-dir)");
  if (study.has_named_reports() && (!a.markdown.empty() || !a.html.empty()))
    throw std::runtime_error("--markdown/--html copy a study's one report; " + a.study.string() +
                             " writes one per [reports.NAME] under --out");
  const auto out_dir = a.out_dir.empty() ? std::filesystem::path("runs") / study.name : a.out_dir;
  const auto runs_dir = a.runs_dir.empty() ? out_dir : a.runs_dir;
  std::filesystem::create_directories(runs_dir);
  const bool checked = !study.golden_dir.empty();
  const std::string python = project_python();
  prepare(study, python, runs_dir);
  std::vector<Job> jobs;
  for (const auto& v : study.variants) {
    if (!a.only.empty() && std::find(a.only.begin(), a.only.end(), v.name) == a.only.end())
      continue;
    if (v.nproc > 1 && jobs.empty()) require_torchrun(python, study);
    Job j;
    j.variant = &v;
    j.argv = variant_argv(study, v, a, python, runs_dir);
    j.output = runs_dir / (v.name + ".out");
    jobs.push_back(std::move(j));
  }

  // Up to `jobs` at once; each run pins its own thread count, so bits do not depend on it.
  const auto t0 = Clock::now();
  size_t next = 0, done = 0;
  std::map<pid_t, size_t> running;
  double finished_seconds = 0;
  while (done < jobs.size()) {
    if (const int sig = stop_signal()) {
      if (running.empty()) throw RunInterrupted(sig, -1);  // each started variant has stopped
    }
    while (stop_signal() == 0 && next < jobs.size() && int(running.size()) < std::max(1, a.jobs)) {
      Job& j = jobs[next];
      j.start = Clock::now();
      j.pid = spawn(j.argv, j.output);
      running[j.pid] = next++;
      std::printf("[study] %s: %s started (%zu/%zu)\n", study.name.c_str(), j.variant->name.c_str(),
                  next, jobs.size());
      std::fflush(stdout);
    }
    int status = 0;
    std::vector<pid_t> pids;
    for (const auto& [pid, job] : running) pids.push_back(pid);
    const auto it = running.find(wait_for_child(pids, &status));  // one of `running`
    Job& j = jobs[it->second];
    running.erase(it);
    j.seconds = std::chrono::duration<double>(Clock::now() - j.start).count();
    j.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    finished_seconds += j.seconds;
    ++done;
    const double left =
        finished_seconds / double(done) * double(jobs.size() - done) / double(std::max(1, a.jobs));
    std::printf("[study] %s: %s %s in %.0f s (%zu/%zu done, ETA %.0f s)\n", study.name.c_str(),
                j.variant->name.c_str(),
                a.bless && j.exit_code == 0 ? "blessed" : verdict(j.exit_code, checked).c_str(),
                j.seconds, done, jobs.size(), left);
    std::fflush(stdout);
  }

  // Stopped: the variants have ended (wait_for_child passed the signal on); no report of them.
  if (const int sig = stop_signal()) throw RunInterrupted(sig, -1);
  int exit_code = kExitMatch;
  for (const auto& j : jobs) {
    if (j.exit_code != kExitMatch && j.exit_code != kExitDiffer) exit_code = kExitError;
    if (j.exit_code == kExitDiffer && exit_code == kExitMatch) exit_code = kExitDiffer;
    if (j.exit_code != kExitMatch) {
      std::printf("--- %s (%s), %s:\n%s", j.variant->name.c_str(),
                  verdict(j.exit_code, checked).c_str(), j.output.string().c_str(),
                  read_text(j.output).c_str());
    }
  }
  if (!a.junit.empty()) write_file_atomically(a.junit, junit_xml(study.name, jobs));

  // The reports, of the variants that ran now (a log from an earlier run could be stale).
  if (!a.bless && exit_code != kExitError) {
    write_study_reports(study, out_dir, [&](const StudyVariant& v) -> std::filesystem::path {
      const bool ran =
          std::any_of(jobs.begin(), jobs.end(), [&](const Job& j) { return j.variant == &v; });
      if (!ran) return {};
      return runs_dir / (v.nproc > 1 ? v.log_name + ".rank0.h5" : v.log_name + ".h5");
    });
    const auto copy = [&](const std::filesystem::path& to, const char* name) {
      if (!to.empty())
        std::filesystem::copy_file(out_dir / name, to,
                                   std::filesystem::copy_options::overwrite_existing);
    };
    copy(a.markdown, "report.md");
    copy(a.html, "report.html");
  }
  std::printf("study      %s: %zu variants, %s (%.0f s)\n", study.name.c_str(), jobs.size(),
              exit_code == kExitMatch    ? (a.bless   ? "all blessed"
                                            : checked ? "all match their goldens"
                                                      : "all ran (no goldens)")
              : exit_code == kExitDiffer ? "some differ from their goldens"
                                         : "errors",
              std::chrono::duration<double>(Clock::now() - t0).count());
  return exit_code;
}

}  // namespace cliprepro::cli
