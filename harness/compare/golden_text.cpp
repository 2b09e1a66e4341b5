#include "harness/compare/golden_text.h"

#include <cstdio>
#include <map>
#include <set>

#include "harness/log/digest.h"
#include "harness/log/file_sha256.h"

namespace cliprepro {
namespace {

std::string family_of(const std::string& name) { return name.substr(0, name.find('/')); }

// A 0-d tensor at a step in full precision; "-" where the log has none.
std::string scalar_text(const LogReader& log, const char* name, int64_t step) {
  const TensorSeries* s = log.find(name);
  if (s == nullptr) return "-";
  bool stored = false;
  for (int64_t f : s->full_steps) stored = stored || f == step;
  if (!stored) return "-";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g",
                log.read_full(name, step).to(torch::kFloat64).item<double>());
  return buf;
}

}  // namespace

std::string golden_text(const LogReader& golden) {
  // (step, family) -> the family's tensor digests at that step, in name order (series_ is a map).
  std::map<int64_t, std::map<std::string, std::vector<uint64_t>>> rows;
  std::set<std::string> families;
  for (const auto& [name, s] : golden.series()) {
    families.insert(family_of(name));
    for (size_t i = 0; i < s.steps.size(); ++i)
      rows[s.steps[i]][family_of(name)].push_back(s.digests[i]);
  }
  std::string out =
      "# cliprepro golden companion of " + golden.path().filename().string() + " (scenario " +
      golden.attr("scenario_name") +
      "): per step, scalars in full precision (%.17g) and per\n"
      "# tensor family XXH3-64 over its tensors' digests at that step in name order (-: none).\n"
      "# sha256: of the golden file, checked before HDF5 reads it.\n" +
      std::string(kSha256Field) + "\t" + file_sha256(golden.path()) + "\n" +
      "step\tloss\tlr\tlogit_scale";
  for (const auto& f : families) out += "\t" + f;
  out += "\n";
  for (const auto& [step, by_family] : rows) {
    out += std::to_string(step) + "\t" + scalar_text(golden, tensor_name::kLoss, step) + "\t" +
           scalar_text(golden, tensor_name::kLr, step) + "\t" +
           scalar_text(golden, tensor_name::kLogitScale, step);
    for (const auto& f : families) {
      const auto it = by_family.find(f);
      if (it == by_family.end()) {
        out += "\t-";
        continue;
      }
      char hex[17];
      std::snprintf(hex, sizeof hex, "%016llx",
                    (unsigned long long)bytes_digest(it->second.data(), it->second.size() * 8));
      out += std::string("\t") + hex;
    }
    out += "\n";
  }
  return out;
}

}  // namespace cliprepro
