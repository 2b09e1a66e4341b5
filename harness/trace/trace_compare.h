// Two traces of the same steps, op by op: the first op whose inputs are equal and whose outputs
// differ is the kernel to blame (its caller's inputs may be equal too: the innermost such op
// completes first, so completion order finds it).
#pragma once
#include <string>
#include <vector>

#include "harness/trace/trace_file.h"

namespace cliprepro {

struct TraceStepVerdict {
  int64_t step = 0;
  size_t ops = 0;              // ops compared (the shorter trace's, up to a sequence split)
  size_t differing_ops = 0;    // ops whose outputs differ
  std::string sequence_split;  // non-empty: the two op sequences part here (then nothing after)
  int64_t blamed = -1;         // first op, in completion order, with equal inputs, other outputs
  int64_t first_output_diff = -1;  // first op, in completion order, whose outputs differ
  bool equal() const { return differing_ops == 0 && sequence_split.empty(); }
};

struct TraceComparison {
  std::vector<TraceStepVerdict> steps;  // steps both traces hold
  std::vector<int64_t> only_a, only_b;  // steps one trace holds
  bool equal() const;
};

TraceComparison compare_traces(const Trace& a, const Trace& b);

// The verdict in words: per step MATCH, or the blamed op (name, phase, module path, callers,
// inputs, the two outputs' digests); `la`/`lb` name the traces.
std::string format_trace_comparison(const TraceComparison& c, const Trace& a, const Trace& b,
                                    const std::string& la, const std::string& lb);

}  // namespace cliprepro
