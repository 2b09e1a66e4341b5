// cliprepro attribute: which layer's rounding matters, at which step.
#include <iostream>

#include "harness/cli/commands.h"
#include "harness/compare/attribution.h"
#include "harness/report/attribution_report.h"

namespace cliprepro::cli {

int cmd_attribute(const AttributeArgs& args) {
  const LogReader ref(args.reference);
  const Scenario variant = load_scenario(args.scenario, args.variant);
  const auto progress = [&](const std::string& what) {
    if (!args.quiet) std::cerr << "[attribute] " << what << "\n";
  };
  const Attribution a = attribute(ref, variant, args.steps, args.rank, progress);
  const auto dir = args.out_dir.empty()
                       ? args.reference.parent_path() / (a.variant_name + ".attribution")
                       : args.out_dir;
  for (const auto& f : attribution_findings(a)) std::cout << f << "\n";
  for (const auto& p : write_attribution(a, dir)) std::cout << "wrote " << p.string() << "\n";
  return kExitMatch;
}

}  // namespace cliprepro::cli
