// OpenCLIP model-config JSON (embed_dim, vision_cfg, text_cfg) for ModifiedResNet CLIP models.
// Every key OpenCLIP's CLIP/CLIPVisionCfg/CLIPTextCfg know is either honoured, ignored by OpenCLIP
// itself for this model family, or refused by name unless it holds OpenCLIP's default: a config
// that is another model in OpenCLIP never trains here as if it were this one.
#pragma once
#include <array>
#include <filesystem>
#include <string>

namespace cliprepro {

struct VisionConfig {
  int image_size = 224;
  std::array<int, 4> layers{3, 4, 6, 3};
  int width = 64;
  int heads = 32;  // attention-pool heads: OpenCLIP's width * 32 // head_width
};

struct TextConfig {
  int context_length = 77;
  int vocab_size = 49408;
  int width = 512;
  int heads = 8;
  int layers = 12;
};

struct ModelConfig {
  std::string name;
  int embed_dim = 1024;
  bool quick_gelu = false;
  VisionConfig vision;
  TextConfig text;
  std::string json_text;  // the file as read, for provenance
};

// Directory of the shipped configs (RN50.json, tiny.json, ...).
std::filesystem::path model_config_dir();

// Loads `name_or_path`: a path to a JSON file, or the name of a shipped config.
ModelConfig load_model_config(const std::string& name_or_path);

ModelConfig parse_model_config(const std::string& json_text, const std::string& name);

}  // namespace cliprepro
