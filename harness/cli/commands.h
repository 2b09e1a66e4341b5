// The cliprepro subcommands. Each returns the process exit code: 0 match, 1 differ, 2 error
// (errors are thrown and mapped to 2 by main).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace cliprepro {
struct PrecisionReport;
}

namespace cliprepro::cli {

inline constexpr int kExitMatch = 0;
inline constexpr int kExitDiffer = 1;
inline constexpr int kExitError = 2;

// A report's report.html and report.md in `dir` (created), each written atomically.
void write_report(const PrecisionReport& rep, const std::filesystem::path& dir);

struct RunArgs {
  std::filesystem::path scenario;
  std::string variant;  // of a study file
  std::filesystem::path out_dir = "runs";
  bool no_golden = false;
  bool quiet = false;
};

int cmd_run(const RunArgs& a);
int cmd_golden_bless(const std::filesystem::path& scenario, const std::string& variant, bool quiet);
int cmd_golden_check(const std::filesystem::path& scenario, const std::string& variant,
                     const std::filesystem::path& log);
struct CompareArgs {
  std::filesystem::path a, b;
  size_t max_rows = 20;
  std::string tolerance = "bitwise";                  // see harness/compare/tolerance.h
  std::vector<std::string> tolerance_for;             // GLOB=POLICY overrides
  std::filesystem::path json, junit, markdown, html;  // written when set
  bool verify = false;        // also re-hash every stored tensor of both logs
  bool common_steps = false;  // only the steps both logs hold (a recorded --window, a resume)
};

int cmd_compare(const CompareArgs& args);
struct ReportArgs {
  std::vector<std::filesystem::path> logs;  // the first is the reference
  std::vector<std::string> labels;
  std::string title = "cliprepro precision report";
  std::string heat_family = "params";
  std::string noise_floor;        // label of the run that is the noise floor; "" none
  std::filesystem::path out_dir;  // report.html and report.md
};
int cmd_report(const ReportArgs& args);

struct BisectArgs {
  std::filesystem::path a, b, work_dir = "bisect";
  std::string tolerance = "bitwise";
};
int cmd_bisect(const BisectArgs& args);

// Re-hashes every stored tensor of each log against its digest and checks the file was closed
// cleanly: exit 0 all intact and complete, 1 some corrupt or incomplete (named), 2 unreadable.
struct AttributeArgs {
  std::filesystem::path reference, scenario;
  std::string variant;  // of a study file
  std::vector<int64_t> steps;
  std::filesystem::path out_dir;  // default: <reference dir>/<variant name>.attribution
  bool rank = false;
  bool quiet = false;
};
// Teacher-forced precision attribution (harness/compare/attribution.h): writes
// attribution.{md,html,json}, prints the findings; exit 0.
int cmd_attribute(const AttributeArgs& args);

struct TraceArgs {
  std::filesystem::path scenario;
  std::string variant;  // of a study file
  std::vector<int64_t> steps;
  std::filesystem::path out;  // default: runs/<scenario name>.trace.h5
};
// cliprepro trace record: every ATen op of the chosen steps to a trace file; exit 0.
int cmd_trace_record(const TraceArgs& args);
// cliprepro trace compare: the first op whose inputs are equal and outputs differ; 0/1/2.
int cmd_trace_compare(const std::filesystem::path& a, const std::filesystem::path& b);

int cmd_verify(const std::vector<std::filesystem::path>& logs);

// The environment fingerprint (or its key); with `scenario`, as a run of it records it here (its
// [determinism] pins and portable kernels applied).
int cmd_env(bool key_only, const std::filesystem::path& scenario);

// Every scenario key as markdown tables; with `write_doc`, rewrites that file's generated
// blocks (docs/scenario-schema.md) instead.
int cmd_keys(const std::filesystem::path& write_doc);
// The precision sites of a model (what [numerics] fp32-modules globs select), or those `globs`
// select; exit 1 when they select none.
int cmd_sites(const std::string& model_name, const std::vector<std::string>& globs);

}  // namespace cliprepro::cli
