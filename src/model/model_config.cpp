#include "src/model/model_config.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace cliprepro {
namespace {

using nlohmann::json;

// What this model family does with each key OpenCLIP's config classes know (open_clip 3.3:
// CLIP.__init__, CLIPVisionCfg, CLIPTextCfg). kHonoured: read below. kIgnoredByOpenClip: a
// ModifiedResNet tower never reads it, in OpenCLIP either, so any value builds the same model.
// Otherwise the value must equal OpenCLIP's default (`json` below): it would select something
// cliprepro does not build (a timm trunk, a HF text model, another MLP ratio, ...).
enum class Use { kHonoured, kIgnoredByOpenClip, kDefaultOnly };
struct KnownKey {
  const char* key;
  Use use;
  json default_value;
};

const std::vector<KnownKey>& top_keys() {
  static const std::vector<KnownKey> k = {
      {"embed_dim", Use::kHonoured, nullptr},
      {"quick_gelu", Use::kHonoured, nullptr},
      {"vision_cfg", Use::kHonoured, nullptr},
      {"text_cfg", Use::kHonoured, nullptr},
      {"init_logit_scale", Use::kDefaultOnly, 2.659260036932778},  // ln(1 / 0.07)
      {"init_logit_bias", Use::kDefaultOnly, nullptr},
      {"nonscalar_logit_scale", Use::kDefaultOnly, false},
      {"custom_text", Use::kDefaultOnly, false},
      {"cast_dtype", Use::kDefaultOnly, nullptr},
      {"output_dict", Use::kIgnoredByOpenClip, nullptr},  // the forward's return type only
  };
  return k;
}

const std::vector<KnownKey>& vision_keys() {
  static const std::vector<KnownKey> k = [] {
    std::vector<KnownKey> v = {{"layers", Use::kHonoured, nullptr},
                               {"width", Use::kHonoured, nullptr},
                               {"head_width", Use::kHonoured, nullptr},
                               {"image_size", Use::kHonoured, nullptr},
                               {"timm_model_name", Use::kDefaultOnly, nullptr}};
    // Read only by VisionTransformer or TimmModel, never by ModifiedResNet.
    for (const char* key : {"mlp_ratio",          "patch_size",
                            "ls_init_value",      "patch_dropout",
                            "attentional_pool",   "attn_pooler_queries",
                            "attn_pooler_heads",  "no_ln_pre",
                            "pos_embed_type",     "final_ln_after_pool",
                            "pool_type",          "output_tokens",
                            "act_kwargs",         "norm_kwargs",
                            "block_type",         "qk_norm",
                            "scaled_cosine_attn", "scale_heads",
                            "scale_attn_inner",   "scale_attn",
                            "scale_fc",           "timm_model_pretrained",
                            "timm_pool",          "timm_proj",
                            "timm_proj_bias",     "timm_drop",
                            "timm_drop_path"})
      v.push_back({key, Use::kIgnoredByOpenClip, nullptr});
    return v;
  }();
  return k;
}

const std::vector<KnownKey>& text_keys() {
  static const std::vector<KnownKey> k = {
      {"context_length", Use::kHonoured, nullptr},
      {"vocab_size", Use::kHonoured, nullptr},
      {"width", Use::kHonoured, nullptr},
      {"heads", Use::kHonoured, nullptr},
      {"layers", Use::kHonoured, nullptr},
      {"hf_tokenizer_name", Use::kDefaultOnly, nullptr},
      {"tokenizer_mode", Use::kDefaultOnly, nullptr},
      {"tokenizer_kwargs", Use::kDefaultOnly, nullptr},
      {"mlp_ratio", Use::kDefaultOnly, 4.0},
      {"ls_init_value", Use::kDefaultOnly, nullptr},
      {"embed_cls", Use::kDefaultOnly, false},
      {"pad_id", Use::kDefaultOnly, 0},
      {"eos_id", Use::kIgnoredByOpenClip, nullptr},  // read by pool_type 'eos' only
      {"no_causal_mask", Use::kDefaultOnly, false},
      {"final_ln_after_pool", Use::kDefaultOnly, false},
      {"pool_type", Use::kDefaultOnly, "argmax"},
      {"proj_bias", Use::kDefaultOnly, false},
      {"proj_type", Use::kDefaultOnly, "linear"},
      {"output_tokens", Use::kDefaultOnly, false},
      {"act_kwargs", Use::kDefaultOnly, nullptr},
      {"norm_kwargs", Use::kDefaultOnly, nullptr},
      {"block_type", Use::kDefaultOnly, nullptr},
      {"qk_norm", Use::kDefaultOnly, false},
      {"scaled_cosine_attn", Use::kDefaultOnly, false},
      {"scale_heads", Use::kDefaultOnly, false},
      {"scale_attn_inner", Use::kDefaultOnly, false},
      {"scale_attn", Use::kDefaultOnly, false},
      {"scale_fc", Use::kDefaultOnly, false},
      {"hf_model_name", Use::kDefaultOnly, nullptr},
      {"hf_model_pretrained", Use::kIgnoredByOpenClip, nullptr},  // only with hf_model_name
      {"hf_proj_type", Use::kIgnoredByOpenClip, nullptr},
      {"hf_pooler_type", Use::kIgnoredByOpenClip, nullptr},
  };
  return k;
}

void check_known_keys(const json& obj, const std::vector<KnownKey>& known,
                      const std::string& section, const std::string& where) {
  for (const auto& item : obj.items()) {  // no structured binding: clang 14 cannot capture one
    const std::string& key = item.key();
    const json& value = item.value();
    const std::string q = section.empty() ? key : section + "." + key;
    const auto it =
        std::find_if(known.begin(), known.end(), [&](const KnownKey& k) { return key == k.key; });
    if (it == known.end()) {
      throw std::runtime_error(where + ": " + q +
                               " is no key of OpenCLIP's CLIP model config (OpenCLIP would refuse "
                               "it too)");
    }
    // 4 == 4.0: a JSON integer written for a float default is the same setting.
    const bool is_default =
        value == it->default_value || (value.is_number() && it->default_value.is_number() &&
                                       value.get<double>() == it->default_value.get<double>());
    if (it->use == Use::kDefaultOnly && !is_default) {
      throw std::runtime_error(where + ": " + q + " = " + value.dump() +
                               " builds another model in OpenCLIP (default " +
                               it->default_value.dump() +
                               "); cliprepro's ModifiedResNet CLIP does not build it, so it "
                               "refuses the config rather than train a different model");
    }
  }
}

}  // namespace

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
  check_known_keys(j, top_keys(), "", where);
  c.embed_dim = field(j, "", "embed_dim", 1, 1 << 16);
  if (j.contains("quick_gelu") && !j["quick_gelu"].is_boolean())
    throw std::runtime_error(where + ": quick_gelu must be true or false");
  c.quick_gelu = j.value("quick_gelu", false);
  if (!j.contains("vision_cfg") || !j["vision_cfg"].is_object())
    throw std::runtime_error(where + ": needs the object vision_cfg");
  const auto& v = j["vision_cfg"];
  check_known_keys(v, vision_keys(), "vision_cfg", where);
  c.vision.image_size = field(v, "vision_cfg", "image_size", 32, 4096);
  const auto& layers = v.contains("layers") ? v["layers"] : nlohmann::json();
  if (!layers.is_array() || layers.size() != 4) {
    throw std::runtime_error(where +
                             ": vision_cfg.layers must be a list of 4 integers (ModifiedResNet)");
  }
  for (size_t i = 0; i < 4; ++i)
    c.vision.layers[i] = bounded(layers[i], "vision_cfg.layers[" + std::to_string(i) + "]", 1, 256);
  c.vision.width = field(v, "vision_cfg", "width", 1, 1 << 14);
  // OpenCLIP: the attention pool has width * 32 // head_width heads over width * 32 channels.
  const int pool_width = c.vision.width * 32;
  const int head_width = v.contains("head_width")
                             ? bounded(v["head_width"], "vision_cfg.head_width", 1, pool_width)
                             : 64;
  c.vision.heads = pool_width / head_width;
  if (c.vision.heads < 1 || pool_width % c.vision.heads != 0) {
    throw std::runtime_error(where + ": vision_cfg.width * 32 = " + std::to_string(pool_width) +
                             " channels do not split into width * 32 // head_width = " +
                             std::to_string(c.vision.heads) + " attention-pool heads");
  }
  if (!j.contains("text_cfg") || !j["text_cfg"].is_object())
    throw std::runtime_error(where + ": needs the object text_cfg");
  const auto& t = j["text_cfg"];
  check_known_keys(t, text_keys(), "text_cfg", where);
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
