#include "harness/log/log_selection.h"

#include "src/log_schema.h"

#include <charconv>
#include <stdexcept>
#include <system_error>

#include "src/glob.h"

namespace cliprepro {

bool StepSpec::contains(int64_t step, int64_t last_step) const {
  auto resolve = [&](int64_t v) { return v < 0 ? last_step + 1 + v : v; };
  const int64_t a = resolve(start);
  const int64_t b = stop == kOpen ? last_step + 1 : resolve(stop);
  return step >= a && step < b && (step - a) % stride == 0;
}

StepSpec parse_step_spec(const std::string& text) {
  const std::string form = "step spec '" + text +
                           "': expected an integer (-1 = last step), \"a:b\", \"a:\" or \"a:b:k\"";
  auto to_int = [&](const std::string& s) {
    int64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size())
      throw std::invalid_argument(form);
    if (v < 0)
      throw std::invalid_argument("step spec '" + text +
                                  "': steps are >= 0 (or -1 alone, the last step)");
    return v;
  };
  StepSpec spec;
  const auto c1 = text.find(':');
  if (c1 == std::string::npos) {
    if (text == "-1") return StepSpec{-1, StepSpec::kOpen, 1};
    spec.start = to_int(text);
    spec.stop = spec.start + 1;
    return spec;
  }
  const auto c2 = text.find(':', c1 + 1);
  const std::string a = text.substr(0, c1);
  const std::string b =
      text.substr(c1 + 1, c2 == std::string::npos ? std::string::npos : c2 - c1 - 1);
  spec.start = a.empty() ? 0 : to_int(a);
  spec.stop = b.empty() ? StepSpec::kOpen : to_int(b);
  if (c2 != std::string::npos) spec.stride = to_int(text.substr(c2 + 1));
  if (spec.stride < 1) throw std::invalid_argument("step spec '" + text + "': stride must be >= 1");
  if (spec.stop <= spec.start)
    throw std::invalid_argument("step spec '" + text + "': empty range (a:b needs a < b)");
  return spec;
}

std::string LogSelection::unmatched_globs_warning(const std::set<std::string>& names) const {
  std::string unmatched;
  for (const auto& glob : full_tensors) {
    bool any = false;
    for (const auto& n : names) any = any || glob_match(glob, n);
    if (!any) unmatched += (unmatched.empty() ? "'" : ", '") + glob + "'";
  }
  if (unmatched.empty()) return {};
  std::string examples;
  for (const char* prefix : {"params/", "grads/", "activations/", "bn_batch/"}) {
    const auto it = names.lower_bound(prefix);
    if (it != names.end() && it->starts_with(prefix)) examples += " '" + *it + "'";
  }
  return origin + " full-tensors: " + unmatched +
         " match no tensor of this run, nothing is stored for them (`*` matches across '/'; its "
         "names look like" +
         examples + ")";
}

bool LogSelection::always_full(const std::string& name, int64_t ndim) {
  // eval/ results are 0-d; sample ids and keys say which samples a step saw.
  return ndim == 0 || name == tensor_name::kSampleIds || name == tensor_name::kSampleKeys;
}

bool selects_step(const std::vector<StepSpec>& specs, int64_t step, int64_t last_step) {
  for (const auto& s : specs)
    if (s.contains(step, last_step)) return true;
  return false;
}

bool LogSelection::wants_full(const std::string& name, int64_t ndim, int64_t step,
                              int64_t last_step) const {
  if (always_full(name, ndim)) return true;
  return selects_step(full_steps, step, last_step) && glob_match_any(full_tensors, name);
}

bool LogSelection::may_want_full(const std::string& name, int64_t ndim) const {
  return always_full(name, ndim) || (!full_steps.empty() && glob_match_any(full_tensors, name));
}

}  // namespace cliprepro
