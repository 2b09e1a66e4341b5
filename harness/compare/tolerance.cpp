#include "harness/compare/tolerance.h"

#include <torch/torch.h>

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "harness/compare/tensor_diff.h"
#include "src/glob.h"

namespace cliprepro {
namespace {

double parse_number(const std::string& spec, const std::string& v) {
  size_t used = 0;
  double d = 0;
  try {
    d = std::stod(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v.size() || !std::isfinite(d) || d < 0) {
    throw std::invalid_argument("tolerance '" + spec + "': '" + v +
                                "' is not a non-negative number");
  }
  return d;
}

// torch.testing.assert_close's defaults (rtol, atol) by dtype.
std::pair<double, double> torch_defaults(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat16:
      return {1e-3, 1e-5};
    case torch::kBFloat16:
      return {1.6e-2, 1e-5};
    case torch::kFloat32:
      return {1.3e-6, 1e-5};
    case torch::kFloat64:
      return {1e-7, 1e-7};
    default:
      return {0.0, 0.0};
  }
}

// allclose with NaN == NaN; returns the largest |a-b| - (atol + rtol|b|) (<= 0 passes).
double close_excess(const torch::Tensor& a, const torch::Tensor& b, double rtol, double atol) {
  auto a64 = a.to(torch::kFloat64), b64 = b.to(torch::kFloat64);
  auto equal = a64.eq(b64).logical_or(a64.isnan().logical_and(b64.isnan()));
  auto excess = (a64 - b64).abs() - (atol + rtol * b64.abs());
  // Unequal infinities or a NaN against a number: infinitely outside.
  excess = torch::where(excess.isnan(), torch::full_like(excess, INFINITY), excess);
  excess = torch::where(equal, torch::full_like(excess, -INFINITY), excess);
  return excess.max().item<double>();
}

}  // namespace

double dtype_eps(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat64:
      return std::ldexp(1.0, -52);
    case torch::kFloat32:
      return std::ldexp(1.0, -23);
    case torch::kFloat16:
      return std::ldexp(1.0, -10);
    case torch::kBFloat16:
      return std::ldexp(1.0, -7);
    default:
      return 0.0;
  }
}

std::string Tolerance::text() const {
  std::ostringstream o;
  switch (kind) {
    case Kind::kBitwise:
      return "bitwise";
    case Kind::kUlp:
      return "ulp=" + std::to_string(ulp);
    case Kind::kClose:
      o << "rtol=" << rtol << ",atol=" << atol;
      return o.str();
    case Kind::kTorchDefaults:
      return "torch";
    case Kind::kDepth:
      o << "depth:k=" << k << ",c=" << c;
      return o.str();
  }
  return "?";
}

Tolerance parse_tolerance(const std::string& spec) {
  Tolerance t;
  if (spec == "bitwise") return t;
  if (spec == "torch") {
    t.kind = Tolerance::Kind::kTorchDefaults;
    return t;
  }
  std::string body = spec;
  if (spec == "depth" || spec.rfind("depth:", 0) == 0) {
    t.kind = Tolerance::Kind::kDepth;
    body = spec.size() > 6 ? spec.substr(6) : "";
  }
  bool have_rtol = false, have_atol = false;
  std::stringstream items(body);
  std::string item;
  while (std::getline(items, item, ',')) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) {
      throw std::invalid_argument("tolerance '" + spec +
                                  "': expected bitwise, ulp=N, rtol=R,atol=A, torch or "
                                  "depth[:k=K,c=C]");
    }
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    const double v = parse_number(spec, value);
    if (t.kind == Tolerance::Kind::kDepth && (key == "k" || key == "c")) {
      (key == "k" ? t.k : t.c) = v;
    } else if (t.kind != Tolerance::Kind::kDepth && key == "ulp" && !have_rtol && !have_atol) {
      // 2^53: beyond it a double no longer holds every integer (and 1e20 would wrap negative).
      if (v != std::floor(v) || v < 0 || v > 9007199254740992.0) {
        throw std::invalid_argument("tolerance '" + spec +
                                    "': ulp=N takes an integer in [0, 2^53]");
      }
      t.kind = Tolerance::Kind::kUlp;
      t.ulp = int64_t(v);
    } else if (t.kind != Tolerance::Kind::kDepth && t.kind != Tolerance::Kind::kUlp &&
               (key == "rtol" || key == "atol")) {
      t.kind = Tolerance::Kind::kClose;
      (key == "rtol" ? t.rtol : t.atol) = v;
      (key == "rtol" ? have_rtol : have_atol) = true;
    } else {
      throw std::invalid_argument("tolerance '" + spec + "': unexpected '" + key + "'");
    }
  }
  if (t.kind == Tolerance::Kind::kBitwise) {
    throw std::invalid_argument("tolerance '" + spec +
                                "': expected bitwise, ulp=N, rtol=R,atol=A, torch or "
                                "depth[:k=K,c=C]");
  }
  return t;
}

ToleranceCheck check_tolerance(const Tolerance& tol, const torch::Tensor& a_in,
                               const torch::Tensor& b_in, int64_t depth) {
  ToleranceCheck r;
  auto a = a_in.detach().to(torch::kCPU), b = b_in.detach().to(torch::kCPU);
  if (a.sizes() != b.sizes()) {
    r.pass = false;
    r.measure = INFINITY;
    return r;
  }
  if (a.numel() == 0) return r;
  switch (tol.kind) {
    case Tolerance::Kind::kBitwise: {
      const auto d = diff_tensors(a, b);
      r.pass = d.bitwise_equal && a.scalar_type() == b.scalar_type();
      r.measure = double(d.differing);
      return r;
    }
    case Tolerance::Kind::kUlp: {
      const auto d = diff_tensors(a, b);
      r.measure = double(d.max_ulp);
      r.bound = double(tol.ulp);
      r.pass = d.max_ulp <= tol.ulp;
      return r;
    }
    case Tolerance::Kind::kClose:
    case Tolerance::Kind::kTorchDefaults: {
      auto [rtol, atol] =
          tol.kind == Tolerance::Kind::kClose
              ? std::pair{tol.rtol, tol.atol}
              : torch_defaults(torch::promote_types(a.scalar_type(), b.scalar_type()));
      r.measure = close_excess(a, b, rtol, atol);
      r.pass = r.measure <= 0;
      return r;
    }
    case Tolerance::Kind::kDepth: {
      auto a64 = a.to(torch::kFloat64), b64 = b.to(torch::kFloat64);
      const double nb = b64.norm().item<double>();
      const double nd = (a64 - b64).norm().item<double>();
      r.bound = tol.k * std::pow(tol.c, double(depth)) * dtype_eps(a.scalar_type());
      r.measure = nb == 0 ? (nd == 0 ? 0.0 : INFINITY) : nd / nb;
      if (std::isnan(r.measure)) r.measure = INFINITY;
      r.pass = r.measure <= r.bound;
      return r;
    }
  }
  return r;
}

const Tolerance& TolerancePolicy::for_tensor(const std::string& name) const {
  for (const auto& [glob, tol] : overrides)
    if (glob_match(glob, name)) return tol;
  return fallback;
}

bool TolerancePolicy::all_bitwise() const {
  if (fallback.kind != Tolerance::Kind::kBitwise) return false;
  for (const auto& o : overrides)
    if (o.second.kind != Tolerance::Kind::kBitwise) return false;
  return true;
}

std::string TolerancePolicy::text() const {
  std::string t = fallback.text();
  for (const auto& [glob, tol] : overrides) t += "; " + glob + "=" + tol.text();
  return t;
}

std::pair<std::string, Tolerance> parse_tolerance_override(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw std::invalid_argument("tolerance override '" + text +
                                "': expected GLOB=POLICY, e.g. 'optimizer/*=ulp=4'");
  }
  return {text.substr(0, eq), parse_tolerance(text.substr(eq + 1))};
}

}  // namespace cliprepro
