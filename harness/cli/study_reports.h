// The reports of a study run: each StudyReport's variants against its reference (with its noise
// floor), written as <out>/<report>/report.{md,html} (the default report: <out>/report.*), plus
// <out>/findings.md gathering every report's findings when the study names its reports, and
// <out>/environment-key.json: the reports regenerate byte for byte under the same key.
#pragma once
#include <filesystem>
#include <functional>
#include <string>

#include "harness/scenario/study.h"

namespace cliprepro::cli {

// `log_of(variant)`: the log a variant's run wrote (rank 0's for a multi-rank one), empty if it
// did not run: a report leaves such variants out, and is skipped without its reference.
void write_study_reports(const Study& study, const std::filesystem::path& out_dir,
                         const std::function<std::filesystem::path(const StudyVariant&)>& log_of);

}  // namespace cliprepro::cli
