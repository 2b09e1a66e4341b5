#include "harness/compare/tensor_depth.h"

#include "src/log_schema.h"

#include <algorithm>
#include <vector>

namespace cliprepro {
namespace {

struct Layer {
  int64_t index, tower_size;
};

}  // namespace

std::map<std::string, int64_t> tensor_depths(const LogReader& log) {
  const std::string kAct = family::kActivations;
  // Capture points per tower in execution order.
  std::map<bool, std::vector<std::pair<int32_t, std::string>>> towers;
  for (const auto& [name, s] : log.series()) {
    if (!name.starts_with(kAct) || s.order.empty()) continue;
    const std::string point = name.substr(kAct.size());
    if (point.find('_') != std::string::npos && point.find('.') == std::string::npos &&
        point != "token_embedding" && point != "ln_final") {
      continue;  // image_features, logits_per_image, ...: outputs, not layers
    }
    towers[point.starts_with("visual.")].push_back({s.order.front(), point});
  }
  std::map<std::string, Layer> layer;
  for (auto& [visual, points] : towers) {
    std::sort(points.begin(), points.end());
    for (size_t i = 0; i < points.size(); ++i) {
      layer[points[i].second] = {int64_t(i) + 1, int64_t(points.size())};
    }
  }
  // The capture point whose module holds `path` (longest prefix ending at a '.' boundary).
  auto holder = [&](const std::string& path) -> const Layer* {
    const Layer* best = nullptr;
    size_t best_len = 0;
    for (const auto& [point, l] : layer) {
      if ((path == point || path.starts_with(point + ".")) && point.size() > best_len) {
        best = &l, best_len = point.size();
      }
    }
    return best;
  };
  std::map<std::string, int64_t> depth;
  for (const auto& [name, s] : log.series()) {
    int64_t d = 1;
    if (name.starts_with(kAct)) {
      const auto it = layer.find(name.substr(kAct.size()));
      if (it != layer.end()) d = it->second.index;
    } else if (name.starts_with(family::kBnBatch)) {
      const std::string m = name.substr(9, name.rfind('.') - 9);
      if (const Layer* l = holder(m)) d = l->index;
    } else {
      const size_t slash = name.rfind('/');
      if (const Layer* l = holder(name.substr(slash + 1))) d = l->tower_size + 1 - l->index;
    }
    depth[name] = d;
  }
  return depth;
}

}  // namespace cliprepro
