// cliprepro: train CLIP reproducibly, log its bits to HDF5, compare runs and goldens.
#include <CLI/CLI.hpp>

#include <c10/util/Exception.h>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <new>

#include "harness/cli/commands.h"
#include "harness/cli/import_command.h"
#include "harness/cli/study_command.h"
#include "harness/compare/golden.h"
#include "harness/run/infer.h"
#include "harness/run/interrupt.h"
#include "src/train/determinism.h"

namespace cli = cliprepro::cli;

int main(int argc, char** argv) {
  // Passive OpenMP waiting: see docs/design.md.
  cliprepro::reexec_with_passive_omp_wait(argv);
  CLI::App app{
      "cliprepro: reproducible, bit-level explainable CLIP (OpenCLIP RN50) training.\n"
      "Exit codes: 0 match, 1 runs differ, 2 error."};
  app.require_subcommand(1);

  cli::RunArgs run_args;
  auto* run = app.add_subcommand(
      "run", "Train a scenario, write its HDF5 log, check it against the scenario's golden");
  run->add_option("scenario", run_args.scenario, "Scenario TOML file")
      ->required()
      ->check(CLI::ExistingFile);
  run->add_option("--out", run_args.out_dir, "Directory for the log (<out>/<scenario name>.h5)")
      ->capture_default_str();
  run->add_option("--variant", run_args.variant,
                  "The variant of a study file to run ([variants.NAME]; `study` runs them all)");
  run->add_flag("--no-golden", run_args.no_golden, "Skip the golden check");
  run->add_flag("-q,--quiet", run_args.quiet, "No progress display");

  auto* golden = app.add_subcommand("golden", "Bless or check golden reference logs");
  golden->require_subcommand(1);
  std::string bless_scenario, bless_variant;
  bool bless_quiet = false;
  auto* bless =
      golden->add_subcommand("bless", "Run the scenario and (re)write its golden atomically");
  bless->add_option("scenario", bless_scenario, "Scenario TOML file")
      ->required()
      ->check(CLI::ExistingFile);
  bless->add_option("--variant", bless_variant, "The variant of a study file");
  bless->add_flag("-q,--quiet", bless_quiet, "No progress display");
  std::string check_scenario, check_variant, check_log;
  auto* check =
      golden->add_subcommand("check", "Check an existing log against the scenario's golden");
  check->add_option("scenario", check_scenario, "Scenario TOML file")
      ->required()
      ->check(CLI::ExistingFile);
  check->add_option("log", check_log, "Run log (.h5)")->required()->check(CLI::ExistingFile);
  check->add_option("--variant", check_variant, "The variant of a study file");
  std::filesystem::path text_golden;
  auto* text = golden->add_subcommand(
      "text", "(Re)write a golden's text companion (<golden>.txt) from the golden file");
  text->add_option("golden", text_golden, "Golden (.h5)")->required()->check(CLI::ExistingFile);

  cli::CompareArgs cmp;
  auto* compare = app.add_subcommand(
      "compare",
      "Compare two logs: first divergence (step, phase, tensor in execution order) and a "
      "per-tensor summary. Exit 0 match, 1 differ, 2 error");
  compare->add_option("a", cmp.a, "Log under test (.h5)")->required()->check(CLI::ExistingFile);
  compare->add_option("b", cmp.b, "Reference log (.h5)")->required()->check(CLI::ExistingFile);
  compare->add_option("--max-rows", cmp.max_rows, "Differing tensors to list")
      ->capture_default_str();
  compare
      ->add_option("--tolerance", cmp.tolerance,
                   "Where both logs hold a step's full tensor: bitwise, ulp=N, rtol=R,atol=A, "
                   "torch (torch.testing defaults per dtype) or depth[:k=K,c=C]. Steps with "
                   "digests only must match bitwise")
      ->capture_default_str();
  compare->add_option("--tolerance-for", cmp.tolerance_for,
                      "Per tensor family, GLOB=POLICY (repeatable; the first matching glob wins), "
                      "e.g. 'optimizer/*=rtol=1e-5,atol=1e-8'");
  compare->add_option("--json", cmp.json, "Also write the result as JSON to this file");
  compare->add_option("--junit", cmp.junit,
                      "Also write JUnit XML (one testcase per tensor) to this file");
  compare->add_option("--markdown", cmp.markdown, "Also write a markdown summary to this file");
  compare->add_option("--html", cmp.html, "Also write a self-contained HTML report to this file");
  compare->add_flag("--verify", cmp.verify,
                    "Also re-hash every stored tensor of both logs against its digest (without "
                    "it, tensors whose digests all agree are not read)");
  compare->add_flag("--common-steps", cmp.common_steps,
                    "Compare each tensor at the steps both logs hold, and only those (a "
                    "recording's --window, or a resumed run, against the whole run)");

  std::vector<std::filesystem::path> verify_logs;
  auto* verify = app.add_subcommand(
      "verify",
      "Re-hash every stored tensor against its digest and check each log was closed cleanly. "
      "Exit 0 intact, 1 corrupt or incomplete, 2 unreadable");
  verify->add_option("logs", verify_logs, "Logs (.h5)")->required();

  cli::ReportArgs rep;
  auto* report = app.add_subcommand(
      "report",
      "Precision report: how far runs drift from the first (reference) run: loss and zero-shot "
      "curves, per-family error growth and a step x tensor heat map where both logs hold full "
      "tensors, BatchNorm running-stat and Adam moment drift, loss-scale events. Writes "
      "OUT/report.html (self-contained, works offline) and OUT/report.md");
  report->add_option("logs", rep.logs, "Reference log, then the runs to compare with it (.h5)")
      ->required()
      ->expected(2, -1)
      ->check(CLI::ExistingFile);
  report->add_option("--out", rep.out_dir, "Output directory")->required();
  report->add_option("--labels", rep.labels, "One label per log (default: scenario names)")
      ->delimiter(',');
  report->add_option("--title", rep.title, "Report title")->capture_default_str();
  report
      ->add_option("--heat-family", rep.heat_family,
                   "Tensor family of the heat map: params, grads, activations, buffers, "
                   "bn_batch, optimizer/exp_avg, optimizer/exp_avg_sq")
      ->capture_default_str();
  report->add_option("--noise-floor", rep.noise_floor,
                     "Label of the run that is the reference under a change of no semantics: "
                     "every other run's drift is also stated as a multiple of its drift");

  cliprepro::InferOptions infer_opt;
  auto* infer = app.add_subcommand(
      "infer",
      "One forward pass (training-mode BatchNorm unless --eval) of a model on IN.h5's images and "
      "tokens; writes features, logits, loss, every capture point and BatchNorm batch statistics "
      "(and with --grads every parameter gradient) to OUT.h5");
  infer->add_option("--model", infer_opt.model, "Model config name (RN50, tiny, ...) or JSON path")
      ->required();
  infer
      ->add_option("--checkpoint", infer_opt.checkpoint,
                   "Weights: .safetensors, or a torch zip (.pt/.bin; state dict or "
                   "{'state_dict': ...}); loaded strictly")
      ->required()
      ->check(CLI::ExistingFile);
  infer
      ->add_option("--inputs", infer_opt.inputs,
                   "HDF5 with images (N,3,H,W) float32, tokens (N,L) int64")
      ->required()
      ->check(CLI::ExistingFile);
  infer->add_option("--out", infer_opt.out, "Output HDF5 (written atomically)")->required();
  infer->add_flag("--grads", infer_opt.grads,
                  "Backpropagate the loss; write every parameter gradient");
  infer->add_flag("--eval", infer_opt.eval, "BatchNorm in eval mode (running statistics)");
  infer->add_option("--threads", infer_opt.threads, "Intra-op threads")->capture_default_str();
  infer->add_option("--device", infer_opt.device, "cpu or cuda[:N]")->capture_default_str();

  cli::BisectArgs bis;
  auto* bisect = app.add_subcommand(
      "bisect",
      "Where two run logs first diverge, re-run both from their nearest training checkpoint "
      "before that step (<out>/<name>.checkpoints/, save-every-steps) or from the start, with "
      "every tensor in full through that step, and name the first differing tensor in "
      "execution order down to the element. Exit 0 no divergence, 1 located, 2 error");
  bisect->add_option("a", bis.a, "Run log (.h5)")->required()->check(CLI::ExistingFile);
  bisect->add_option("b", bis.b, "Run log (.h5)")->required()->check(CLI::ExistingFile);
  bisect->add_option("--work-dir", bis.work_dir, "Where the re-run logs go (a/, b/)")
      ->capture_default_str();
  bisect->add_option("--tolerance", bis.tolerance, "As compare's --tolerance")
      ->capture_default_str();

  cli::StudyArgs st;
  auto* study = app.add_subcommand(
      "study",
      "Run every variant of a study file ([study] + [variants.NAME]) and check each against its "
      "golden; report every variant against the reference. Exit 0 all match, 1 some differ, 2 "
      "error");
  study->add_option("study", st.study, "Study TOML file")->required()->check(CLI::ExistingFile);
  study->add_option("--only", st.only, "Run only these variants (repeatable)");
  study->add_flag("--bless", st.bless, "(Re)write every variant's golden instead of checking");
  study->add_option("--out", st.out_dir, "Directory for the reports (default: runs/<study>)");
  study->add_option("--runs", st.runs_dir, "Directory for the logs and outputs (default: --out)");
  study->add_option("--junit", st.junit, "Also write JUnit XML (one testcase per variant)");
  study->add_option("--markdown", st.markdown,
                    "Also copy the report's markdown here (a study without [reports.NAME])");
  study->add_option("--html", st.html, "Also copy the report's HTML here (likewise)");
  study->add_option("-j,--jobs", st.jobs, "Variants run at once")->capture_default_str();

  std::vector<std::string> import_flags;
  std::filesystem::path import_out, import_replay;
  auto* import_openclip = app.add_subcommand(
      "import-openclip",
      "Write a scenario from an OpenCLIP 3.3.0 command line, as OpenCLIP reads it (its defaults "
      "where a flag is absent); every flag is mapped or refused by name, speed and bookkeeping "
      "flags are listed as ignored. Usage: import-openclip [--out FILE] [--replay LOG] [-- "
      "<flags>]");
  import_openclip->add_option("flags", import_flags, "open_clip_train.main's flags, after --");
  import_openclip->add_option("--out", import_out, "Scenario file to write (default: print it)");
  import_openclip->add_option(
      "--replay", import_replay,
      "A recording (python -m cliprepro.record: LOG.h5, or LOG.manifest.json under torchrun): the "
      "scenario replays its batches and initial weights (dataset-type = \"replay\") with its "
      "threads; the flags default to the ones it recorded");

  auto* env = app.add_subcommand("env", "Print the environment fingerprint as JSON");
  bool env_key = false;
  env->add_flag("--key", env_key,
                "Only the fields that decide bitwise reproducibility (what goldens are keyed on)");
  std::filesystem::path env_scenario;
  env->add_option("scenario", env_scenario,
                  "As a run of this scenario records it here (its pins and portable kernels)")
      ->check(CLI::ExistingFile);

  auto* keys = app.add_subcommand(
      "keys", "Print every scenario key (section, type, default, resume check, doc) as markdown");
  std::filesystem::path keys_doc;
  keys->add_option("--write-doc", keys_doc,
                   "Rewrite the generated key tables of this file (docs/scenario-schema.md)")
      ->check(CLI::ExistingFile);

  cli::AttributeArgs attr;
  auto* attribute = app.add_subcommand(
      "attribute",
      "Teacher-forced precision attribution: each listed step of VARIANT_SCENARIO run once from "
      "the reference log's exact state before it, on the same batch, and its error against the "
      "reference's own step measured per tensor and layer (activations, BatchNorm batch "
      "statistics, gradients, parameter update). The reference must hold every tensor in full "
      "at s-1 and s ([log] full-tensors = [\"*\"]). Writes attribution.{md,html,json}. Usage: "
      "attribute REF_LOG VARIANT_SCENARIO --steps 1,5,9 [--rank]");
  attribute->add_option("reference", attr.reference, "Reference run's log (.h5)")
      ->required()
      ->check(CLI::ExistingFile);
  attribute->add_option("scenario", attr.scenario, "The variant's scenario (or study file)")
      ->required()
      ->check(CLI::ExistingFile);
  attribute->add_option("--variant", attr.variant, "The variant of a study file");
  attribute->add_option("--steps", attr.steps, "Optimizer steps to attribute (1-based)")
      ->required()
      ->delimiter(',')
      ->check(CLI::PositiveNumber);
  attribute->add_option("--out", attr.out_dir,
                        "Output directory (default: <reference dir>/<variant>.attribution)");
  attribute->add_flag("--rank", attr.rank,
                      "Also run each step once per module group with only that group in fp32 "
                      "and rank the groups by the share of the update error they remove");
  attribute->add_flag("-q,--quiet", attr.quiet, "No progress lines");

  auto* trace = app.add_subcommand(
      "trace",
      "Op-level trace: every ATen op of chosen steps with the digest of each input and "
      "output; two traces name the first kernel whose inputs agree and outputs differ");
  trace->require_subcommand(1);
  cli::TraceArgs tr;
  auto* trace_record = trace->add_subcommand(
      "record", "Run SCENARIO up to the last of --steps, tracing those steps into --out");
  trace_record->add_option("scenario", tr.scenario, "Scenario TOML file (or study file)")
      ->required()
      ->check(CLI::ExistingFile);
  trace_record->add_option("--variant", tr.variant, "The variant of a study file");
  trace_record->add_option("--steps", tr.steps, "Optimizer steps to trace (1-based)")
      ->required()
      ->delimiter(',')
      ->check(CLI::PositiveNumber);
  trace_record->add_option("--out", tr.out, "Trace file (default runs/<name>.trace.h5)");
  std::filesystem::path trace_a, trace_b;
  auto* trace_compare = trace->add_subcommand(
      "compare", "Compare two traces of the same steps. Exit 0 equal, 1 differ, 2 error");
  trace_compare->add_option("a", trace_a, "Trace A (.trace.h5)")
      ->required()
      ->check(CLI::ExistingFile);
  trace_compare->add_option("b", trace_b, "Trace B (.trace.h5)")
      ->required()
      ->check(CLI::ExistingFile);

  auto* sites = app.add_subcommand(
      "sites",
      "List a model's precision sites: the names [numerics] fp32-modules and "
      "low-precision-modules select (Conv2d, Linear, BatchNorm2d, attention, text_projection, "
      "loss). Usage: sites MODEL [GLOB...] (exit 1 when the globs select none)");
  std::string sites_model = "tiny";
  std::vector<std::string> sites_globs;
  sites->add_option("model", sites_model, "Shipped config name (tiny, RN50, ...) or JSON path")
      ->required();
  sites->add_option("globs", sites_globs, "Show only the sites these globs select");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return cli::kExitError;
  }

  // A run or bless asked to stop finishes its step and leaves an honest log
  // (harness/run/interrupt.h).
  // A study passes them on to its variants' process groups (harness/cli/process.h).
  if (*run || *bless || *study) cliprepro::install_stop_handlers();
  try {
    if (*run) return cli::cmd_run(run_args);
    if (*bless) return cli::cmd_golden_bless(bless_scenario, bless_variant, bless_quiet);
    if (*check) return cli::cmd_golden_check(check_scenario, check_variant, check_log);
    if (*text) {
      cliprepro::write_golden_text(text_golden);
      return cli::kExitMatch;
    }
    if (*compare) return cli::cmd_compare(cmp);
    if (*verify) return cli::cmd_verify(verify_logs);
    if (*report) return cli::cmd_report(rep);
    if (*bisect) return cli::cmd_bisect(bis);
    if (*infer) {
      cliprepro::run_infer(infer_opt);
      return cli::kExitMatch;
    }
    if (*study) return cli::cmd_study(st);
    if (*import_openclip) return cli::cmd_import_openclip(import_flags, import_out, import_replay);
    if (*env) return cli::cmd_env(env_key, env_scenario);
    if (*keys) return cli::cmd_keys(keys_doc);
    if (*attribute) return cli::cmd_attribute(attr);
    if (*sites) return cli::cmd_sites(sites_model, sites_globs);
    if (*trace_record) return cli::cmd_trace_record(tr);
    if (*trace_compare) return cli::cmd_trace_compare(trace_a, trace_b);
  } catch (const cliprepro::RunInterrupted& e) {
    if (e.step() < 0) {
      std::cerr << "interrupted: " << e.what()
                << " (passed on to its child processes, which have ended)\n";
      return 128 + e.signal();
    }
    std::cerr << "interrupted: " << e.what() << "; "
              << (std::filesystem::exists(e.log())
                      ? e.log().string() + " holds steps through " + std::to_string(e.step()) +
                            " (status interrupted)"
                      : std::string("no golden written (bless keeps one only from a whole run)"))
              << "\n";
    return 128 + e.signal();
  } catch (const std::bad_alloc&) {
    std::cerr << "error: out of memory (a setting asks for more than this machine has?)\n";
    return cli::kExitError;
  } catch (const c10::Error& e) {  // its what() carries a C++ backtrace: not for users
    std::cerr << "error: " << e.what_without_backtrace() << "\n";
    return cli::kExitError;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return cli::kExitError;
  }
  return cli::kExitError;
}
