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
  try {
    c.embed_dim = j.at("embed_dim").get<int>();
    c.quick_gelu = j.value("quick_gelu", false);
    const auto& v = j.at("vision_cfg");
    c.vision.image_size = v.at("image_size").get<int>();
    const auto& layers = v.at("layers");
    if (!layers.is_array() || layers.size() != 4) {
      throw std::runtime_error("vision_cfg.layers must be a list of 4 integers (ModifiedResNet)");
    }
    for (int i = 0; i < 4; ++i) c.vision.layers[i] = layers[i].get<int>();
    c.vision.width = v.at("width").get<int>();
    const auto& t = j.at("text_cfg");
    c.text.context_length = t.at("context_length").get<int>();
    c.text.vocab_size = t.at("vocab_size").get<int>();
    c.text.width = t.at("width").get<int>();
    c.text.heads = t.at("heads").get<int>();
    c.text.layers = t.at("layers").get<int>();
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("model config '" + name + "': " + e.what());
  }
  if (c.vision.image_size % 32 != 0) {
    throw std::runtime_error("model config '" + name +
                             "': vision_cfg.image_size must be a multiple of 32");
  }
  if (c.text.width % c.text.heads != 0) {
    throw std::runtime_error("model config '" + name + "': text_cfg.width must divide by heads");
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
