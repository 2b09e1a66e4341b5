#include "src/model/precision_sites.h"

#include <ATen/autocast_mode.h>

#include <stdexcept>

#include "src/glob.h"

namespace cliprepro {

std::vector<std::string> precision_site_names(const ModelConfig& cfg) {
  // The names ClipImpl's constructors register, in named_modules() order (test
  // PrecisionSites.SiteNamesAreTheModelsModuleNames checks them against the built model).
  std::vector<std::string> out;
  for (int i = 1; i <= 3; ++i) {
    out.push_back("visual.conv" + std::to_string(i));
    out.push_back("visual.bn" + std::to_string(i));
  }
  for (int stage = 0; stage < 4; ++stage) {
    for (int b = 0; b < cfg.vision.layers[size_t(stage)]; ++b) {
      const std::string block =
          "visual.layer" + std::to_string(stage + 1) + "." + std::to_string(b);
      for (const char* m : {".conv1", ".bn1", ".conv2", ".bn2", ".conv3", ".bn3"})
        out.push_back(block + m);
      // Every stage's first block changes width (stage 1: width -> 4 width) or strides.
      if (b == 0) {
        out.push_back(block + ".downsample.0");
        out.push_back(block + ".downsample.1");
      }
    }
  }
  for (const char* m : {"", ".k_proj", ".q_proj", ".v_proj", ".c_proj"})
    out.push_back(std::string("visual.attnpool") + m);
  for (int i = 0; i < cfg.text.layers; ++i) {
    const std::string block = "transformer.resblocks." + std::to_string(i);
    for (const char* m : {".attn", ".attn.out_proj", ".mlp.c_fc", ".mlp.c_proj"})
      out.push_back(block + m);
  }
  out.push_back(kTextProjectionSite);
  out.push_back(kLossSite);
  return out;
}

bool glob_selects_site(const std::string& glob, const std::string& site) {
  if (glob_match(glob, site)) return true;
  for (size_t dot = site.find('.'); dot != std::string::npos; dot = site.find('.', dot + 1)) {
    if (glob_match(glob, site.substr(0, dot))) return true;
  }
  return false;
}

std::map<std::string, SitePrecision> resolve_site_precision(const std::vector<std::string>& sites,
                                                            const PrecisionOverrides& o) {
  std::map<std::string, SitePrecision> out;
  if (o.empty()) return out;
  auto selects_any = [&](const std::vector<std::string>& globs, const std::string& site) {
    for (const auto& g : globs)
      if (glob_selects_site(g, site)) return true;
    return false;
  };
  for (const auto& [key, globs] : {std::pair{"fp32-modules", &o.fp32_modules},
                                   std::pair{"low-precision-modules", &o.low_precision_modules}}) {
    for (const auto& g : *globs) {
      bool any = false;
      for (const auto& s : sites) any = any || glob_selects_site(g, s);
      if (!any) {
        throw std::invalid_argument(
            std::string(key) + ": '" + g +
            "' selects no module whose precision can be set (Conv2d, Linear, BatchNorm2d, "
            "attention, text_projection, loss; e.g. 'visual.layer1.*.bn*', 'visual.attnpool', "
            "'transformer.resblocks.0.attn'; `cliprepro sites MODEL` lists them)");
      }
    }
  }
  for (const auto& s : sites) {
    if (selects_any(o.fp32_modules, s)) {
      out[s] = SitePrecision::kFp32;
    } else if (o.low_precision_modules.empty()) {
      out[s] = SitePrecision::kAsRun;  // fp32-modules alone: the rest exactly as the run has it
    } else {
      out[s] = selects_any(o.low_precision_modules, s) ? SitePrecision::kLow : SitePrecision::kFp32;
    }
  }
  return out;
}

SiteScope::SiteScope(SitePrecision p, torch::DeviceType device) : device_(device) {
  if (p != SitePrecision::kFp32 || !at::autocast::is_autocast_enabled(device_)) return;
  active_ = true;
  at::autocast::set_autocast_enabled(device_, false);
}

SiteScope::~SiteScope() {
  if (active_) at::autocast::set_autocast_enabled(device_, true);
}

torch::Tensor site_input(SitePrecision p, const torch::Tensor& x) {
  if (p == SitePrecision::kAsRun || !x.defined() || !x.is_floating_point()) return x;
  if (p == SitePrecision::kFp32) return x.scalar_type() == torch::kFloat ? x : x.to(torch::kFloat);
  const auto device = x.device().type();
  if (x.scalar_type() != torch::kFloat || !at::autocast::is_autocast_enabled(device)) return x;
  return x.to(at::autocast::get_autocast_dtype(device));
}

}  // namespace cliprepro
