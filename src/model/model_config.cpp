#include "src/model/model_config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace cliprepro {

std::filesystem::path model_config_dir() {
  return std::filesystem::path(CLIPREPRO_SOURCE_DIR) / "src" / "model" / "configs";
}

ModelConfig parse_model_config(const std::string& json_text, const std::string& name) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("model config '" + name + "': " + e.what());
  }
  ModelConfig c;
  c.name = name;
  c.json_text = json_text;
  const std::string where = "model config '" + name + "'";
  // Every size is bounded before a module is built from it: a zero, negative or huge value would
  // otherwise surface as a division by zero or a raw LibTorch trace.
  auto bounded = [&](const nlohmann::json& v, const std::string& q, int64_t lo, int64_t hi) {
    // Unsigned JSON numbers past INT64_MAX must not wrap into range.
    const bool ok = v.is_number_unsigned()
                        ? v.get<uint64_t>() <= uint64_t(hi) && v.get<uint64_t>() >= uint64_t(lo)
                    : v.is_number_integer() ? v.get<int64_t>() >= lo && v.get<int64_t>() <= hi
                                            : false;
    if (!ok) {
      throw std::runtime_error(where + ": " + q + " must be an integer in [" + std::to_string(lo) +
                               ", " + std::to_string(hi) + "], got " + v.dump());
    }
    return int(v.get<int64_t>());
  };
  auto field = [&](const nlohmann::json& obj, const std::string& section, const char* key,
                   int64_t lo, int64_t hi) {
    const std::string q = section.empty() ? key : section + "." + key;
    if (!obj.contains(key)) throw std::runtime_error(where + ": needs " + q);
    return bounded(obj[key], q, lo, hi);
  };
  if (!j.is_object()) throw std::runtime_error(where + ": not a JSON object");
  c.embed_dim = field(j, "", "embed_dim", 1, 1 << 16);
  if (j.contains("quick_gelu") && !j["quick_gelu"].is_boolean())
    throw std::runtime_error(where + ": quick_gelu must be true or false");
  c.quick_gelu = j.value("quick_gelu", false);
  if (!j.contains("vision_cfg") || !j["vision_cfg"].is_object())
    throw std::runtime_error(where + ": needs the object vision_cfg");
  const auto& v = j["vision_cfg"];
  c.vision.image_size = field(v, "vision_cfg", "image_size", 32, 4096);
  const auto& layers = v.contains("layers") ? v["layers"] : nlohmann::json();
  if (!layers.is_array() || layers.size() != 4) {
    throw std::runtime_error(where +
                             ": vision_cfg.layers must be a list of 4 integers (ModifiedResNet)");
  }
  for (size_t i = 0; i < 4; ++i)
    c.vision.layers[i] = bounded(layers[i], "vision_cfg.layers[" + std::to_string(i) + "]", 1, 256);
  // width // 2 attention-pool heads (OpenCLIP: width * 32 // 64): at least one.
  c.vision.width = field(v, "vision_cfg", "width", 2, 1 << 14);
  if (!j.contains("text_cfg") || !j["text_cfg"].is_object())
    throw std::runtime_error(where + ": needs the object text_cfg");
  const auto& t = j["text_cfg"];
  c.text.context_length = field(t, "text_cfg", "context_length", 1, 1 << 14);
  c.text.vocab_size = field(t, "text_cfg", "vocab_size", 1, 1 << 24);
  c.text.width = field(t, "text_cfg", "width", 1, 1 << 16);
  c.text.heads = field(t, "text_cfg", "heads", 1, 1 << 12);
  c.text.layers = field(t, "text_cfg", "layers", 1, 1024);
  if (c.vision.image_size % 32 != 0) {
    throw std::runtime_error(where + ": vision_cfg.image_size must be a multiple of 32");
  }
  if (c.text.width % c.text.heads != 0) {
    throw std::runtime_error(where + ": text_cfg.width must divide by heads");
  }
  return c;
}

ModelConfig load_model_config(const std::string& name_or_path) {
  std::filesystem::path p(name_or_path);
  std::string name = name_or_path;
  if (!(p.extension() == ".json" && std::filesystem::exists(p))) {
    p = model_config_dir() / (name_or_path + ".json");
  } else {
    name = p.stem().string();
  }
  std::ifstream in(p);
  if (!in) {
    throw std::runtime_error("unknown model '" + name_or_path + "' (no file " + p.string() + ")");
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_model_config(ss.str(), name);
}

}  // namespace cliprepro
