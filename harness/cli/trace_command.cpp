// cliprepro trace: which kernel first computes other bits (docs/trace.md).
#include <iostream>

#include "harness/cli/commands.h"
#include "harness/trace/trace_compare.h"
#include "harness/trace/trace_run.h"

namespace cliprepro::cli {

int cmd_trace_record(const TraceArgs& args) {
  const Scenario s = load_scenario(args.scenario, args.variant);
  const auto out =
      args.out.empty() ? std::filesystem::path("runs") / (s.name + ".trace.h5") : args.out;
  const Trace t = trace_scenario(s, args.steps);
  if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path());
  write_trace(out, t);
  size_t ops = 0;
  for (const auto& st : t.steps) ops += st.ops.size();
  std::cout << "trace      " << out.string() << " (" << t.steps.size() << " step(s), " << ops
            << " ops)\n";
  return kExitMatch;
}

int cmd_trace_compare(const std::filesystem::path& a, const std::filesystem::path& b) {
  const Trace ta = read_trace(a), tb = read_trace(b);
  const TraceComparison c = compare_traces(ta, tb);
  std::cout << format_trace_comparison(c, ta, tb, a.string(), b.string());
  return c.equal() ? kExitMatch : kExitDiffer;
}

}  // namespace cliprepro::cli
