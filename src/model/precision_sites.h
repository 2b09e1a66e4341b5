// Per-module precision inside an autocast run ([numerics] fp32-modules / low-precision-modules):
// what TransformerEngine's debug tools do by hand for FP8 GEMMs, for any module of CLIP.
//
// A *site* is a module that runs precision-dependent ops itself: every Conv2d, Linear and
// BatchNorm2d, each attention (MultiheadAttention: packed in_proj + core; AttentionPool2d: its
// positional add, pooling and core), and two names that are not modules: `text_projection`
// (encode_text's matmul) and `loss` (the logits matmuls: ClipLoss's and zero-shot's). Sites are
// named by OpenCLIP's named_modules(). An fp32 site runs with autocast off on fp32 copies of its
// inputs, so its output is fp32; a low site runs under the run's autocast dtype (a BatchNorm casts
// its input to it, as an autocast conv before it would have). Everything else follows its inputs'
// dtypes.
#pragma once
#include <torch/types.h>

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "src/model/model_config.h"

namespace cliprepro {

enum class SitePrecision { kAsRun, kFp32, kLow };

struct PrecisionOverrides {
  std::vector<std::string> fp32_modules;           // these sites run in fp32 (wins over the other)
  std::vector<std::string> low_precision_modules;  // only these run in low precision
  bool empty() const { return fp32_modules.empty() && low_precision_modules.empty(); }
};

// The two sites that are not modules.
inline constexpr const char* kTextProjectionSite = "text_projection";
inline constexpr const char* kLossSite = "loss";

// Every site of a CLIP model with this config, in named_modules() order, the two non-modules
// last. From the config alone: reading a scenario must not run an ATen kernel, which would fix
// ATen's CPU capability before the run's cpu-isa pin (src/train/determinism.h).
std::vector<std::string> precision_site_names(const ModelConfig& cfg);

// Whether `glob` selects `site`: it matches the site's name or the name of a module above it
// ("visual.attnpool" selects visual.attnpool.q_proj).
bool glob_selects_site(const std::string& glob, const std::string& site);

// The precision of every site under `o` (empty when `o` is empty): fp32 if a fp32-modules glob
// selects it; else, with low-precision-modules empty, as the run has it (so lifting a group
// changes nothing else: what attribute --rank relies on); else low if one of its globs selects
// it, fp32 if none does. Throws std::invalid_argument naming the first glob (key and value) that
// selects no site.
std::map<std::string, SitePrecision> resolve_site_precision(const std::vector<std::string>& sites,
                                                            const PrecisionOverrides& o);

// The sites a module runs itself, by name relative to it ("" = its own ops).
class PrecisionSites {
 public:
  SitePrecision of(std::string_view local) const {
    for (const auto& [name, p] : sites_)
      if (name == local) return p;
    return SitePrecision::kAsRun;
  }
  void clear() { sites_.clear(); }
  void set(std::string local, SitePrecision p) { sites_.emplace_back(std::move(local), p); }

 private:
  std::vector<std::pair<std::string, SitePrecision>> sites_;  // a handful: a scan is fastest
};

// Autocast switched off for an fp32 site's ops, untouched otherwise (a low site runs in the
// run's own autocast). Restores the previous state; the cast cache is the enclosing scope's.
class SiteScope {
 public:
  SiteScope(SitePrecision p, torch::DeviceType device);
  ~SiteScope();
  SiteScope(const SiteScope&) = delete;
  SiteScope& operator=(const SiteScope&) = delete;

 private:
  torch::DeviceType device_;
  bool active_ = false;
};

// The input a site computes on: an fp32 site's floating inputs as fp32; a low site's fp32 inputs
// in the autocast dtype while autocast is on (what an autocast op before it would have given);
// others as given.
torch::Tensor site_input(SitePrecision p, const torch::Tensor& x);

}  // namespace cliprepro
