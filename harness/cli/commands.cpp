#include "harness/cli/commands.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "harness/compare/bisect.h"
#include "harness/compare/compare.h"
#include "harness/compare/golden.h"
#include "harness/compare/golden_text.h"
#include "harness/log/env_fingerprint.h"
#include "harness/report/compare_report.h"
#include "harness/report/precision_render.h"
#include "harness/run/run_scenario.h"
#include "harness/scenario/scenario.h"
#include "harness/scenario/scenario_doc.h"
#include "harness/scenario/study.h"
#include "src/dist/process_group.h"
#include "src/model/clip.h"
#include "src/safe_file.h"
#include "src/train/determinism.h"

namespace cliprepro::cli {
namespace {

void print_summary(const Scenario& s, const RunResult& r) {
  const auto& z0 = r.summary.zero_shot_before;
  const auto& z1 = r.summary.zero_shot_after;
  std::printf("scenario   %s (model %s, %lld steps, batch %lld, seed %lld)\n", s.name.c_str(),
              s.train.model.c_str(), (long long)r.summary.steps, (long long)s.train.batch_size,
              (long long)s.train.seed);
  std::printf("loss       %.4f (step 1) -> %.4f (step %lld)\n", r.summary.first_loss,
              r.summary.last_loss, (long long)r.summary.steps);
  const auto& eval = s.train.eval;
  if (eval.zeroshot_frequency > 0 && s.train.data.dataset_type == DatasetType::kSynthetic &&
      eval.imagenet_val.empty()) {
    std::printf(
        "zero-shot  top-1 %.1f%% -> %.1f%%, top-5 %.1f%% -> %.1f%% on %lld held-out images (chance "
        "%.1f%%)\n",
        100 * z0.top1, 100 * z1.top1, 100 * z0.top5, 100 * z1.top5, (long long)z1.count,
        100.0 / double(SyntheticShapes::num_classes()));
  }
  if (eval.zeroshot_frequency > 0 && !eval.imagenet_val.empty()) {
    std::printf("zero-shot  top-1 %.1f%% -> %.1f%%, top-5 %.1f%% -> %.1f%% on %lld images of %s\n",
                100 * z0.top1, 100 * z1.top1, 100 * z0.top5, 100 * z1.top5, (long long)z1.count,
                eval.imagenet_val.c_str());
  }
  std::printf("log        %s (%.1f s)\n", r.log_path.string().c_str(), r.seconds);
}

}  // namespace

int cmd_run(const RunArgs& a) {
  Scenario s = load_scenario(a.scenario, a.variant);
  apply_launch_environment(s);
  if (!a.no_golden) require_golden(s);  // fail before spending minutes training
  RunOptions opts;
  opts.log_path = default_log_path(s, a.out_dir);
  opts.selection = s.log;
  opts.progress = !a.quiet && dist::launch_rank() == 0;
  const RunResult r = train_and_log(s, opts);
  print_summary(s, r);
  if (a.no_golden) return kExitMatch;
  const CompareResult c = check_golden(r.log_path, s);
  std::printf("golden     %s\n", select_golden(r.log_path, s).string().c_str());
  std::fputs(format_compare(c, "run", "golden").c_str(), stdout);
  return c.equal() ? kExitMatch : kExitDiffer;
}

int cmd_golden_bless(const std::filesystem::path& scenario, const std::string& variant,
                     bool quiet) {
  Scenario s = load_scenario(scenario, variant);
  apply_launch_environment(s);
  const RunResult r = bless_golden(s, !quiet);
  print_summary(s, r);
  std::printf("blessed    %s (%.1f KiB)\n", r.log_path.string().c_str(),
              double(std::filesystem::file_size(r.log_path)) / 1024.0);
  std::printf("text       %s (review it in the diff)\n",
              companion_path(r.log_path).string().c_str());
  return kExitMatch;
}

int cmd_golden_check(const std::filesystem::path& scenario, const std::string& variant,
                     const std::filesystem::path& log) {
  const Scenario s = load_scenario(scenario, variant);
  const CompareResult c = check_golden(log, s);
  std::fputs(format_compare(c, log.filename().string(), "golden").c_str(), stdout);
  return c.equal() ? kExitMatch : kExitDiffer;
}

int cmd_compare(const CompareArgs& args) {
  CompareOptions opts;
  opts.tolerance.fallback = parse_tolerance(args.tolerance);
  for (const auto& o : args.tolerance_for)
    opts.tolerance.overrides.push_back(parse_tolerance_override(o));
  opts.verify = args.verify;
  opts.common_steps = args.common_steps;
  LogReader ra(args.a), rb(args.b);
  const CompareResult c = compare_logs(ra, rb, opts);
  const std::string la = args.a.string(), lb = args.b.string();
  std::fputs(format_compare(c, la, lb, args.max_rows).c_str(), stdout);
  if (!args.json.empty()) write_file_atomically(args.json, compare_json(c, la, lb).dump(2) + "\n");
  if (!args.junit.empty()) write_file_atomically(args.junit, compare_junit(c, la, lb));
  if (!args.markdown.empty())
    write_file_atomically(args.markdown, compare_markdown(c, la, lb, args.max_rows));
  if (!args.html.empty()) write_file_atomically(args.html, compare_html(c, la, lb));
  return c.equal() ? kExitMatch : kExitDiffer;
}

void write_report(const PrecisionReport& rep, const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  write_file_atomically(dir / "report.html", precision_report_html(rep));
  write_file_atomically(dir / "report.md", precision_report_markdown(rep));
}

int cmd_report(const ReportArgs& args) {
  ReportOptions opts;
  opts.title = args.title;
  opts.labels = args.labels;
  opts.heat_family = args.heat_family;
  opts.noise_floor = args.noise_floor;
  const PrecisionReport rep = build_precision_report(args.logs, opts);
  write_report(rep, args.out_dir);
  for (const auto& f : rep.findings) std::printf("- %s\n", finding_text(f).c_str());
  std::printf("report     %s, %s\n", (args.out_dir / "report.html").string().c_str(),
              (args.out_dir / "report.md").string().c_str());
  return kExitMatch;
}

int cmd_bisect(const BisectArgs& args) {
  CompareOptions opts;
  opts.tolerance.fallback = parse_tolerance(args.tolerance);
  const BisectResult r = bisect_logs(args.a, args.b, args.work_dir, opts);
  std::fputs(format_bisect(r).c_str(), stdout);
  return r.divergence_step < 0 ? kExitMatch : kExitDiffer;
}

int cmd_verify(const std::vector<std::filesystem::path>& logs) {
  int exit_code = kExitMatch;
  for (const auto& path : logs) {
    try {
      const LogReader log(path);
      int64_t rehashed = 0;
      std::vector<std::string> corrupt;
      for (const auto& [name, s] : log.series()) {
        rehashed += int64_t(s.full_steps.size());
        for (const int64_t step : corrupt_steps(log, s))
          corrupt.push_back(name + " at step " + std::to_string(step));
      }
      const bool complete = log.complete();
      std::printf(
          "%s %s: %zu tensors, %lld stored tensors re-hashed, %s\n",
          corrupt.empty() && complete ? "OK     " : "DIFFER ", path.string().c_str(),
          log.series().size(), (long long)rehashed,
          complete ? "closed cleanly"
                   : ("not closed: ends at /progress step " +
                      std::to_string(log.last_complete_step()) + " (status " + log.attr("status") +
                      (log.attr("failure").empty() ? "" : ": " + log.attr("failure")) + ")")
                         .c_str());
      for (const auto& c : corrupt)
        std::printf("  corrupt: %s does not hash to its digest\n", c.c_str());
      if ((!corrupt.empty() || !complete) && exit_code == kExitMatch) exit_code = kExitDiffer;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: %s: %s\n", path.string().c_str(), e.what());
      exit_code = kExitError;
    }
  }
  return exit_code;
}

int cmd_env(bool key_only, const std::filesystem::path& scenario) {
  if (!scenario.empty()) {  // what a run of it records here: its pins and kernels applied
    const auto det = load_scenario(scenario).train.determinism;
    apply_process_environment(det);
    apply_determinism(det, 0);
  }
  const auto fp = env_fingerprint();
  std::cout << (key_only ? fingerprint_key(fp) : fp).dump(2) << "\n";
  return kExitMatch;
}

int cmd_keys(const std::filesystem::path& write_doc) {
  if (write_doc.empty()) {
    std::vector<std::string> sections;
    for (const auto& k : scenario_keys()) sections.push_back(k.section);
    for (const auto& k : study_keys()) sections.push_back(k.section);
    for (const auto& k : variant_launch_keys()) sections.push_back(k.section);
    for (const auto& k : report_keys()) sections.push_back(k.section);
    std::set<std::string> done;
    for (const auto& section : sections) {
      if (!done.insert(section).second) continue;
      std::cout << "## " << (section.empty() ? "Top level" : "[" + section + "]") << "\n\n"
                << key_table_markdown(section) << "\n";
    }
    return kExitMatch;
  }
  std::stringstream in;
  in << std::ifstream(write_doc).rdbuf();
  const std::string updated = update_schema_doc(in.str());
  if (updated != in.str()) {
    std::ofstream(write_doc, std::ios::trunc) << updated;
    std::cout << "rewrote the key tables of " << write_doc.string() << "\n";
  }
  return kExitMatch;
}

int cmd_sites(const std::string& model_name, const std::vector<std::string>& globs) {
  int shown = 0;
  for (const auto& site : precision_site_names(load_model_config(model_name))) {
    bool selected = globs.empty();
    for (const auto& g : globs) selected = selected || glob_selects_site(g, site);
    if (selected) {
      std::cout << site << "\n";
      ++shown;
    }
  }
  if (shown == 0) {
    std::cerr << "cliprepro sites: no precision site of " << model_name << " is selected\n";
    return kExitDiffer;
  }
  return kExitMatch;
}

}  // namespace cliprepro::cli
