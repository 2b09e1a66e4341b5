// Renders a precision report (harness/report/precision_report.h) as self-contained HTML (inline
// SVG charts and heat maps) or markdown, and phrases its findings. Pure functions of the report.
#pragma once
#include <string>

#include "harness/report/precision_report.h"

namespace cliprepro {

// One run's findings as a markdown sentence (bold run label), as the report and the CLI show it.
std::string finding_text(const RunFinding& f);

std::string precision_report_html(const PrecisionReport& r);
std::string precision_report_markdown(const PrecisionReport& r);

}  // namespace cliprepro
