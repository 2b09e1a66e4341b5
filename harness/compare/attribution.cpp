#include "harness/compare/attribution.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "src/log_schema.h"
#include "src/train/precision.h"

namespace cliprepro {

namespace {

// ‖v − r‖² and ‖r‖² in float64; `max_abs` (when given) gets max |v − r| from the same difference.
ErrorSums sums_of(const torch::Tensor& v, const torch::Tensor& r, double* max_abs = nullptr) {
  const auto r64 = r.to(torch::kFloat64), d = v.to(torch::kFloat64) - r64;
  if (max_abs != nullptr) *max_abs = d.abs().max().item<double>();
  return {d.square().sum().item<double>(), r64.square().sum().item<double>()};
}

}  // namespace

double ErrorSums::rel() const {
  if (diff_sq == 0) return 0;
  return ref_sq == 0 ? std::numeric_limits<double>::infinity() : std::sqrt(diff_sq / ref_sq);
}

const std::vector<ErrorFamily>& error_families() {
  static const std::vector<ErrorFamily> kFamilies = {
      {"activations", family::kActivations, "activations (module outputs)", false},
      {"bn_batch", family::kBnBatch, "BatchNorm batch statistics", false},
      {"grads", family::kGrads, "gradients", false},
      {"update", family::kParams, "parameter update", true},
      {"buffers", family::kBuffers, "BatchNorm running statistics", false},
  };
  return kFamilies;
}

const ErrorFamily& error_family(const std::string& key) {
  for (const auto& f : error_families())
    if (f.key == key) return f;
  throw std::out_of_range("no error family '" + key + "'");
}

std::string layer_of(const std::string& log_name) {
  const auto slash = log_name.find('/', log_name.starts_with("optimizer/") ? 10 : 0);
  std::string rest = slash == std::string::npos ? log_name : log_name.substr(slash + 1);
  if (log_name.starts_with(family::kActivations)) return rest;
  const auto dot = rest.rfind('.');
  return dot == std::string::npos ? rest : rest.substr(0, dot);
}

ErrorSums StepErrors::family(const ErrorFamily& f) const {
  ErrorSums s;
  for (const auto& t : tensors)
    if (t.name.starts_with(f.prefix)) s.add(f.update ? t.update : t.sums);
  return s;
}

std::vector<std::pair<std::string, ErrorSums>> StepErrors::layers(const ErrorFamily& f) const {
  std::vector<std::pair<std::string, ErrorSums>> out;
  std::map<std::string, size_t> index;
  for (const auto& t : tensors) {
    if (!t.name.starts_with(f.prefix)) continue;
    const auto layer = layer_of(t.name);
    auto [it, fresh] = index.emplace(layer, out.size());
    if (fresh) out.emplace_back(layer, ErrorSums{});
    out[it->second].second.add(f.update ? t.update : t.sums);
  }
  return out;
}

StepErrors step_errors(const LogReader& ref, const TeacherForcedStep& v) {
  StepErrors out;
  out.step = v.step;
  out.has_scaler = v.has_scaler;
  out.scaler_restored = v.scaler_restored;
  for (const auto& [name, v_full] : v.tensors) {
    bool compared = false;
    for (const auto& f : error_families()) compared = compared || name.starts_with(f.prefix);
    if (!compared || !v_full.is_floating_point()) continue;
    const auto* s = ref.find(name);
    if (s == nullptr || !s->has_full(v.step))
      continue;  // the reference logged it as a digest only: nothing to measure against
    const auto r = ref.read_full(name, v.step);
    // [log] activation-samples keeps the first k samples of activations/*: compare those.
    auto vt = v_full;
    if (r.dim() > 0 && r.dim() == vt.dim() && r.size(0) < vt.size(0))
      vt = vt.slice(0, 0, r.size(0));
    if (r.sizes() != vt.sizes()) {
      throw std::runtime_error(name + ": the reference logged " + c10::str(r.sizes()) +
                               ", the variant has " + c10::str(vt.sizes()));
    }
    TensorError e;
    e.name = name;
    e.bitwise = r.scalar_type() == vt.scalar_type() && torch::equal(r, vt);
    e.sums = sums_of(vt, r, &e.max_abs);
    if (name.starts_with(family::kParams)) {
      const auto before = ref.read_full(name, v.step - 1);
      e.update = {e.sums.diff_sq, sums_of(r, before).diff_sq};
    }
    out.tensors.push_back(std::move(e));
  }
  // Execution order (the reference's), so tables read as the step ran.
  std::stable_sort(out.tensors.begin(), out.tensors.end(), [&](const auto& a, const auto& b) {
    const auto* sa = ref.find(a.name);
    const auto* sb = ref.find(b.name);
    auto order = [&](const TensorSeries* s) {
      const int64_t row = s->row_at(v.step);
      return row >= 0 && size_t(row) < s->order.size() ? s->order[size_t(row)] : int32_t(0);
    };
    return order(sa) < order(sb);
  });
  return out;
}

std::vector<SiteGroup> attribution_groups() {
  std::vector<SiteGroup> g = {{"stem", {"visual.conv*", "visual.bn*"}}};
  for (int i = 1; i <= 4; ++i) {
    const std::string stage = "visual.layer" + std::to_string(i);
    g.push_back(
        {"layer" + std::to_string(i) + ".bn", {stage + ".*.bn*", stage + ".*.downsample.1"}});
    g.push_back(
        {"layer" + std::to_string(i) + ".conv", {stage + ".*.conv*", stage + ".*.downsample.0"}});
  }
  g.push_back({"attnpool", {"visual.attnpool"}});
  g.push_back({"text.blocks", {"transformer"}});
  g.push_back({"projections", {"text_projection"}});
  g.push_back({"loss", {"loss"}});
  return g;
}

Attribution attribute(const LogReader& ref, const Scenario& variant,
                      const std::vector<int64_t>& steps, bool rank,
                      const AttributionProgress& progress) {
  Attribution out;
  // File names, not paths: a study's committed attribution regenerates byte for byte elsewhere.
  out.reference = ref.path().filename().string();
  out.variant = variant.path.filename().string() +
                (variant.variant.empty() ? "" : " --variant " + variant.variant);
  out.variant_name = variant.variant.empty() ? variant.name : variant.variant;
  if (rank && !precision_mode(variant.train.precision).autocast_dtype) {
    throw std::runtime_error(out.variant +
                             ": --rank lifts module groups to fp32 inside autocast, "
                             "but the variant runs precision \"" +
                             precision_mode(variant.train.precision).name +
                             "\" (rank an amp or amp_bf16 variant)");
  }
  for (const int64_t s : steps) require_reference_state(ref, s);  // fail before any work
  TeacherForcer as_is(ref, variant);
  for (const int64_t s : steps) {
    if (progress) progress("step " + std::to_string(s) + ": " + out.variant);
    StepAttribution a;
    a.errors = step_errors(ref, as_is.step(s));
    out.steps.push_back(std::move(a));
  }
  if (!rank) return out;
  std::vector<double> update(steps.size()), grad(steps.size());  // the variant's own errors
  for (size_t i = 0; i < steps.size(); ++i) {
    update[i] = out.steps[i].errors.family(error_family("update")).rel();
    grad[i] = out.steps[i].errors.family(error_family("grads")).rel();
  }
  for (const auto& group : attribution_groups()) {
    if (progress) progress(group.name + " in fp32");
    TeacherForcer lifted(ref, variant, group.globs);
    for (size_t i = 0; i < steps.size(); ++i) {
      const auto e = step_errors(ref, lifted.step(steps[i]));
      GroupEffect g;
      g.group = group.name;
      g.update_error = e.family(error_family("update")).rel();
      g.grad_error = e.family(error_family("grads")).rel();
      g.update_removed = update[i] > 0 ? 1 - g.update_error / update[i] : kNoValue;
      g.grad_removed = grad[i] > 0 ? 1 - g.grad_error / grad[i] : kNoValue;
      out.steps[i].groups.push_back(g);
    }
  }
  for (auto& a : out.steps) {
    std::stable_sort(a.groups.begin(), a.groups.end(), [](const auto& x, const auto& y) {
      const double ux = std::isnan(x.update_removed) ? -1e300 : x.update_removed;
      const double uy = std::isnan(y.update_removed) ? -1e300 : y.update_removed;
      return ux > uy;
    });
  }
  return out;
}

}  // namespace cliprepro
