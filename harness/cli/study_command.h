// `cliprepro study FILE`: every variant of a study file run (a process each, through torchrun
// `--no-python` for nproc > 1) and checked against its own golden, or blessed; one JUnit
// testcase per variant; the study's reports (each [reports.NAME], or one of every variant against
// the reference) with the noise-floor multiples, findings.md and the environment key.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace cliprepro::cli {

struct StudyArgs {
  std::filesystem::path study;
  std::vector<std::string> only;   // variant names; empty: all
  bool bless = false;              // (re)write each variant's golden instead of checking
  std::filesystem::path out_dir;   // reports; default runs/<study name>
  std::filesystem::path runs_dir;  // logs and outputs; default out_dir
  std::filesystem::path junit, markdown, html;  // written when set
  int jobs = 1;                                 // variants run at once
};

// Exit 0: every variant matches its golden (or was blessed); 1: some differ; 2: an error.
int cmd_study(const StudyArgs& args);

}  // namespace cliprepro::cli
