#include "harness/trace/trace_compare.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <numeric>
#include <sstream>

namespace cliprepro {
namespace {

const TraceStep* find_step(const Trace& t, int64_t step) {
  for (const auto& s : t.steps) {
    if (s.step == step) return &s;
  }
  return nullptr;
}

TraceStepVerdict compare_step(const TraceStep& a, const TraceStep& b) {
  TraceStepVerdict v;
  v.step = a.step;
  size_t n = std::min(a.ops.size(), b.ops.size());
  for (size_t i = 0; i < n; ++i) {
    if (a.ops[i].name != b.ops[i].name || a.ops[i].depth != b.ops[i].depth) {
      v.sequence_split = "op " + std::to_string(i) + ": " + a.ops[i].name + " (depth " +
                         std::to_string(a.ops[i].depth) + ") vs " + b.ops[i].name + " (depth " +
                         std::to_string(b.ops[i].depth) + ")";
      n = i;
      break;
    }
  }
  if (v.sequence_split.empty() && a.ops.size() != b.ops.size()) {
    v.sequence_split = "one trace ends after " + std::to_string(n) +
                       " ops: " + std::to_string(a.ops.size()) + " vs " +
                       std::to_string(b.ops.size());
  }
  v.ops = n;
  std::vector<size_t> by_end(n);
  std::iota(by_end.begin(), by_end.end(), 0);
  std::stable_sort(by_end.begin(), by_end.end(),
                   [&](size_t x, size_t y) { return a.ops[x].end_order < a.ops[y].end_order; });
  for (const size_t i : by_end) {
    if (a.ops[i].outputs == b.ops[i].outputs) continue;
    ++v.differing_ops;
    if (v.first_output_diff < 0) v.first_output_diff = int64_t(i);
    if (v.blamed < 0 && a.ops[i].inputs == b.ops[i].inputs) v.blamed = int64_t(i);
  }
  return v;
}

std::string values_text(const std::vector<TracedValue>& vs, const std::vector<TracedValue>* other) {
  std::string s;
  for (size_t i = 0; i < vs.size(); ++i) {
    s += (i ? ", " : "") + vs[i].desc;
    if (vs[i].has_digest) {
      char hex[24];
      std::snprintf(hex, sizeof hex, " %016" PRIx64, vs[i].digest);
      s += hex;
    }
    if (other != nullptr && (i >= other->size() || !((*other)[i] == vs[i]))) s += " (differs)";
  }
  return s.empty() ? "(none)" : s;
}

std::string op_text(const TraceStep& a, const TraceStep& b, int64_t i) {
  const TracedOp& op = a.ops[size_t(i)];
  std::ostringstream os;
  os << "  op " << i << " " << op.name << "  phase " << op.phase << "  module "
     << (op.module.empty() ? "-" : op.module) << "\n";
  std::string callers;
  for (int64_t p = op.parent; p >= 0 && p < int64_t(a.ops.size()); p = a.ops[size_t(p)].parent)
    callers += (callers.empty() ? "" : " < ") + a.ops[size_t(p)].name;
  if (!callers.empty()) os << "  inside " << callers << "\n";
  os << "  inputs  " << values_text(op.inputs, &b.ops[size_t(i)].inputs) << "\n";
  os << "  outputs A " << values_text(op.outputs, nullptr) << "\n";
  os << "  outputs B " << values_text(b.ops[size_t(i)].outputs, nullptr) << "\n";
  return os.str();
}

}  // namespace

bool TraceComparison::equal() const {
  if (!only_a.empty() || !only_b.empty()) return false;
  return std::all_of(steps.begin(), steps.end(), [](const auto& s) { return s.equal(); });
}

TraceComparison compare_traces(const Trace& a, const Trace& b) {
  TraceComparison c;
  for (const auto& sa : a.steps) {
    if (const TraceStep* sb = find_step(b, sa.step)) {
      c.steps.push_back(compare_step(sa, *sb));
    } else {
      c.only_a.push_back(sa.step);
    }
  }
  for (const auto& sb : b.steps) {
    if (find_step(a, sb.step) == nullptr) c.only_b.push_back(sb.step);
  }
  return c;
}

std::string format_trace_comparison(const TraceComparison& c, const Trace& a, const Trace& b,
                                    const std::string& la, const std::string& lb) {
  std::ostringstream os;
  os << (c.equal() ? "MATCH" : "DIFFER") << ": A " << la << " vs B " << lb << "\n";
  auto steps_text = [](const std::vector<int64_t>& v) {
    std::string s;
    for (const auto x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
    return s;
  };
  if (!c.only_a.empty()) os << "steps only A traced: " << steps_text(c.only_a) << "\n";
  if (!c.only_b.empty()) os << "steps only B traced: " << steps_text(c.only_b) << "\n";
  for (const auto& v : c.steps) {
    const TraceStep& sa = *find_step(a, v.step);
    const TraceStep& sb = *find_step(b, v.step);
    os << "step " << v.step << ": " << v.ops << " ops, ";
    if (v.equal()) {
      os << "every input and output bitwise equal\n";
      continue;
    }
    os << v.differing_ops << " with differing outputs\n";
    if (!v.sequence_split.empty()) os << "  the op sequences part at " << v.sequence_split << "\n";
    if (v.blamed >= 0) {
      os << "first op whose inputs are equal and whose outputs differ (the kernel to blame):\n"
         << op_text(sa, sb, v.blamed);
    } else if (v.first_output_diff >= 0) {
      os << "no op has equal inputs and differing outputs (an input the trace does not see "
            "differs); first op whose outputs differ:\n"
         << op_text(sa, sb, v.first_output_diff);
    }
  }
  return os.str();
}

}  // namespace cliprepro
