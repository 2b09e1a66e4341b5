// cliprepro trace: a recorded step holds every phase with module paths, two recordings of one
// run match, and the comparison blames the innermost op whose inputs are equal and outputs not.
#include <gtest/gtest.h>

#include <set>

#include "harness/trace/trace_compare.h"
#include "harness/trace/trace_file.h"
#include "test_paths.h"
#include "test_util.h"

namespace cliprepro {
namespace {

TEST(Trace, RecordsEveryPhaseWithModulesAndTwoRecordingsMatch) {
  const auto dir = test::temp_dir("trace_record");
  const auto scenario = test::short_scenario(dir, "traced", 2);
  for (const char* name : {"a", "b"}) {
    const auto r = test::run_cli("trace record " + scenario.string() + " --steps 1,2 --out " +
                                 (dir / (std::string(name) + ".trace.h5")).string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  const Trace t = read_trace(dir / "a.trace.h5");
  ASSERT_EQ(t.steps.size(), 2u);
  EXPECT_EQ(t.attrs.at("scenario_name"), "traced");
  EXPECT_NE(t.attrs.at("fingerprint").find("portable_kernels"), std::string::npos);
  std::set<std::string> phases;
  bool attnpool = false, backward_node = false, optimizer_state = false, nested = false;
  for (const auto& op : t.steps[0].ops) {
    phases.insert(op.phase);
    attnpool |= op.phase == "forward" && op.module == "visual.attnpool";
    backward_node |= op.phase == "backward" && op.module.find("Backward") != std::string::npos;
    optimizer_state |= op.phase == "optimizer" && op.module.rfind("optimizer/exp_avg_sq/", 0) == 0;
    nested |= op.depth > 0 && op.parent >= 0;
  }
  EXPECT_EQ(phases, (std::set<std::string>{"forward", "backward", "optimizer"}));
  EXPECT_TRUE(attnpool && backward_node && optimizer_state && nested);
  // Determinism: a second recording is bitwise the same, op by op.
  const auto same = test::run_cli("trace compare " + (dir / "a.trace.h5").string() + " " +
                                  (dir / "b.trace.h5").string());
  EXPECT_EQ(same.exit_code, 0) << same.output;
  EXPECT_NE(same.output.find("MATCH"), std::string::npos) << same.output;
  // LibTorch's kernels instead of the portable ones: the traces part (exit 1).
  const auto native = test::short_scenario(dir, "traced-native", 2, "");
  auto text = test::read_file(native);
  text.replace(text.find("[determinism]\n"), 14, "[determinism]\nportable = false\n");
  test::write_file(native, text);
  ASSERT_EQ(test::run_cli("trace record " + native.string() + " --steps 1 --out " +
                          (dir / "n.trace.h5").string())
                .exit_code,
            0);
  const auto differ = test::run_cli("trace compare " + (dir / "a.trace.h5").string() + " " +
                                    (dir / "n.trace.h5").string());
  EXPECT_EQ(differ.exit_code, 1) << differ.output;
  EXPECT_NE(differ.output.find("steps only A traced: 2"), std::string::npos) << differ.output;
  // Bad input: exit 2, naming the file.
  const auto bad =
      test::run_cli("trace compare " + scenario.string() + " " + (dir / "a.trace.h5").string());
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  const auto beyond = test::run_cli("trace record " + scenario.string() + " --steps 9");
  EXPECT_EQ(beyond.exit_code, 2) << beyond.output;
  EXPECT_NE(beyond.output.find("has 2 steps"), std::string::npos) << beyond.output;
}

TracedValue tensor(uint64_t digest) { return {"Float[2]", digest, true}; }

// linear (depth 0) calls t and addmm (depth 1); B's addmm computes other bits from equal inputs,
// so linear's outputs differ too: addmm, which completes first, is the one to blame.
Trace synthetic(uint64_t addmm_out, uint64_t relu_in) {
  auto op = [](std::string name, int depth, int64_t parent, int64_t end,
               std::vector<TracedValue> in, std::vector<TracedValue> out) {
    TracedOp o;
    o.name = std::move(name);
    o.phase = "forward";
    o.module = "visual.attnpool";
    o.depth = depth;
    o.parent = parent;
    o.end_order = end;
    o.inputs = std::move(in);
    o.outputs = std::move(out);
    return o;
  };
  Trace t;
  t.attrs["scenario_name"] = "synthetic";
  t.steps.push_back(
      {1,
       {op("aten::linear", 0, -1, 2, {tensor(1), tensor(2), {"None"}}, {tensor(addmm_out)}),
        op("aten::t", 1, 0, 0, {tensor(2)}, {{"Float[2]"}}),
        op("aten::addmm", 1, 0, 1, {tensor(3), tensor(1), tensor(2), {"1"}}, {tensor(addmm_out)}),
        op("aten::relu", 0, -1, 3, {tensor(relu_in)}, {tensor(relu_in + 1)})}});
  return t;
}

TEST(Trace, CompareBlamesTheInnermostOpWithEqualInputsAndRoundTrips) {
  const auto dir = test::temp_dir("trace_compare");
  const Trace a = synthetic(10, 20), b = synthetic(11, 21);
  write_trace(dir / "a.trace.h5", a);
  const Trace back = read_trace(dir / "a.trace.h5");
  ASSERT_EQ(back.steps.size(), 1u);
  ASSERT_EQ(back.steps[0].ops.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(back.steps[0].ops[i].name, a.steps[0].ops[i].name);
    EXPECT_EQ(back.steps[0].ops[i].inputs, a.steps[0].ops[i].inputs);
    EXPECT_EQ(back.steps[0].ops[i].outputs, a.steps[0].ops[i].outputs);
    EXPECT_EQ(back.steps[0].ops[i].end_order, a.steps[0].ops[i].end_order);
  }
  const TraceComparison c = compare_traces(a, b);
  ASSERT_EQ(c.steps.size(), 1u);
  EXPECT_FALSE(c.equal());
  EXPECT_EQ(c.steps[0].blamed, 2) << "addmm, not its caller linear nor relu (other inputs)";
  EXPECT_EQ(c.steps[0].differing_ops, 3u);
  const std::string text = format_trace_comparison(c, a, b, "a", "b");
  EXPECT_NE(text.find("op 2 aten::addmm  phase forward  module visual.attnpool"), std::string::npos)
      << text;
  EXPECT_NE(text.find("inside aten::linear"), std::string::npos) << text;
  // Other op sequences are named where they part.
  Trace other = a;
  other.steps[0].ops[3].name = "aten::gelu";
  const auto split = compare_traces(a, other);
  EXPECT_NE(split.steps[0].sequence_split.find("aten::relu (depth 0) vs aten::gelu"),
            std::string::npos)
      << split.steps[0].sequence_split;
  EXPECT_TRUE(compare_traces(a, a).equal());
}

}  // namespace
}  // namespace cliprepro
