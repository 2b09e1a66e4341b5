#include "harness/scenario/openclip_import.h"

#include <cmath>
#include <map>
#include <sstream>
#include <stdexcept>

#include "harness/scenario/scenario.h"

namespace cliprepro {
namespace {

// OpenCLIP 3.3.0's dests that are not scenario keys. kIgnored: speed or bookkeeping only (they
// change no bit of the training); kRefused: fine at OpenCLIP's default, refused otherwise;
// kLoader: how the training loader draws its batches, ignored when the scenario replays a
// recording (it feeds the recorded batches), refused otherwise.
enum class Unmapped { kIgnored, kRefused, kLoader };
struct UnmappedFlag {
  const char* dest;
  Unmapped what;
  const char* why;
};
constexpr UnmappedFlag kUnmapped[] = {
    {"cache_dir", Unmapped::kIgnored, "where pretrained weights are cached"},
    {"copy_codebase", Unmapped::kIgnored, "bookkeeping"},
    {"ddp_static_graph", Unmapped::kIgnored, "DDP speed only"},
    {"debug", Unmapped::kIgnored, "log verbosity"},
    {"delete_previous_checkpoint", Unmapped::kIgnored, "checkpoint bookkeeping"},
    {"dist_url", Unmapped::kIgnored, "rendezvous (torchrun's environment is used)"},
    {"imagenet_v2", Unmapped::kIgnored,
     "evaluation only (OpenCLIP's evaluation DataLoader draws one seed from the main generator "
     "after each evaluated epoch, so with more than one epoch the later batches differ)"},
    {"log_every_n_steps", Unmapped::kIgnored, "console logging"},
    {"log_local", Unmapped::kIgnored, "console logging"},
    {"logs", Unmapped::kIgnored, "where OpenCLIP writes its logs (cliprepro: --out)"},
    {"no_set_device_rank", Unmapped::kIgnored, "device placement bookkeeping"},
    {"remote_sync", Unmapped::kIgnored, "checkpoint upload"},
    {"remote_sync_frequency", Unmapped::kIgnored, "checkpoint upload"},
    {"remote_sync_protocol", Unmapped::kIgnored, "checkpoint upload"},
    {"report_to", Unmapped::kIgnored, "metrics reporting (cliprepro logs to HDF5)"},
    {"save_most_recent", Unmapped::kIgnored, "checkpoint bookkeeping"},
    {"val_data", Unmapped::kIgnored,
     "validation loss, evaluation only, not computed (OpenCLIP's validation DataLoader draws one "
     "seed from the main generator after each evaluated epoch, so with more than one epoch the "
     "later batches differ)"},
    {"val_frequency", Unmapped::kIgnored, "evaluation only"},
    {"wandb_notes", Unmapped::kIgnored, "metrics reporting"},
    {"wandb_project_name", Unmapped::kIgnored, "metrics reporting"},
    {"coca_caption_loss_weight", Unmapped::kRefused, "CoCa models are not supported"},
    {"coca_contrastive_loss_weight", Unmapped::kRefused, "CoCa models are not supported"},
    {"dataset_resampled", Unmapped::kLoader, "sampling with replacement is not implemented"},
    {"distill_model", Unmapped::kRefused, "distillation is not supported"},
    {"distill_pretrained", Unmapped::kRefused, "distillation is not supported"},
    {"epochs_cooldown", Unmapped::kRefused, "only the cosine schedule is implemented"},
    {"force_context_length", Unmapped::kRefused, "edit the model config JSON instead"},
    {"force_custom_text", Unmapped::kRefused, "edit the model config JSON instead"},
    {"force_image_size", Unmapped::kRefused, "edit the model config JSON instead"},
    {"force_patch_dropout", Unmapped::kRefused, "ViT models are not supported"},
    {"force_quick_gelu", Unmapped::kRefused, "use the model RN50-quickgelu or a config JSON"},
    {"grad_checkpointing", Unmapped::kRefused, "activation checkpointing is not implemented"},
    {"horovod", Unmapped::kRefused, "Horovod is not supported (torchrun + c10d is)"},
    {"image_interpolation", Unmapped::kRefused, "only OpenCLIP's default preprocessing"},
    {"image_mean", Unmapped::kRefused, "only OpenCLIP's default preprocessing"},
    {"image_resize_mode", Unmapped::kRefused, "only OpenCLIP's default preprocessing"},
    {"image_std", Unmapped::kRefused, "only OpenCLIP's default preprocessing"},
    {"lock_image", Unmapped::kRefused, "every parameter is trained (no tower locking)"},
    {"lock_image_freeze_bn_stats", Unmapped::kRefused, "no tower locking"},
    {"lock_image_unlocked_groups", Unmapped::kRefused, "no tower locking"},
    {"lock_text", Unmapped::kRefused, "no tower locking"},
    {"lock_text_freeze_layer_norm", Unmapped::kRefused, "no tower locking"},
    {"lock_text_unlocked_layers", Unmapped::kRefused, "no tower locking"},
    {"loss_dist_impl", Unmapped::kRefused, "SigLIP only"},
    {"lr_cooldown_end", Unmapped::kRefused, "only the cosine schedule is implemented"},
    {"lr_cooldown_power", Unmapped::kRefused, "only the cosine schedule is implemented"},
    {"lr_scheduler", Unmapped::kRefused, "only the cosine schedule is implemented"},
    {"momentum", Unmapped::kRefused, "only AdamW is implemented"},
    {"opt", Unmapped::kRefused, "only AdamW is implemented"},
    {"pretrained", Unmapped::kRefused, "training starts from the seeded initialisation"},
    {"pretrained_image", Unmapped::kRefused, "training starts from the seeded initialisation"},
    {"siglip", Unmapped::kRefused, "only the CLIP loss is implemented"},
    {"skip_scheduler", Unmapped::kRefused, "the lr schedule always runs"},
    {"torchcompile", Unmapped::kRefused, "compiled kernels change the numerics"},
    {"torchscript", Unmapped::kRefused, "not supported"},
    {"trace", Unmapped::kRefused, "not supported"},
    {"train_data_upsampling_factors", Unmapped::kLoader, "one data source only"},
    {"use_bn_sync", Unmapped::kRefused, "SyncBatchNorm is not implemented"},
    {"use_bnb_linear", Unmapped::kRefused, "bitsandbytes layers are not supported"},
};

std::string flag_of(const std::string& dest) {
  std::string f = "--" + dest;
  for (char& c : f) c = c == '_' ? '-' : c;
  return f;
}

std::string toml_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// The shortest text that reads back as `v` (nlohmann's), with the . or e TOML floats need.
std::string toml_float(double v) {
  std::string s = nlohmann::json(v).dump();
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

// An argument as a shell would need it quoted to give it back.
std::string shell_word(const std::string& a) {
  if (!a.empty() && a.find_first_of(" \t'\"\\$`()*?[]{};&|<>!#~") == std::string::npos) return a;
  std::string out = "'";
  for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Each of `::`-separated paths made absolute against `cwd` (webdataset's lists have several).
std::string absolute_paths(const std::string& paths, const std::filesystem::path& cwd) {
  std::string out;
  for (size_t start = 0;;) {
    const size_t end = paths.find("::", start);
    const std::string p = paths.substr(start, end - start);
    out += p.empty() || std::filesystem::path(p).is_absolute() ? p : (cwd / p).string();
    if (end == std::string::npos) return out;
    out += "::";
    start = end + 2;
  }
}

// `v` (OpenCLIP's value) written as the key's type; throws naming the flag on a mismatch.
std::string toml_value(const ConfigKey<Scenario>& k, const nlohmann::json& v,
                       const std::string& flag, const std::filesystem::path& cwd) {
  const auto bad = [&] {
    return std::invalid_argument(flag + " " + v.dump() + ": not a " + value_type_name(k.type));
  };
  switch (k.type) {
    case ValueType::kBool:
      if (!v.is_boolean()) throw bad();
      return v.get<bool>() ? "true" : "false";
    case ValueType::kInt:
      if (!v.is_number_integer()) throw bad();
      return std::to_string(v.get<int64_t>());
    case ValueType::kFloat:
      if (!v.is_number()) throw bad();
      return toml_float(v.get<double>());
    case ValueType::kFloatPair:
      if (!v.is_array() || v.size() != 2 || !v[0].is_number() || !v[1].is_number()) throw bad();
      return "[" + toml_float(v[0].get<double>()) + ", " + toml_float(v[1].get<double>()) + "]";
    case ValueType::kString: {
      if (!v.is_string()) throw bad();
      std::string s = v.get<std::string>();
      // A path relative to where OpenCLIP would have run: absolute, as the scenario may be
      // written elsewhere (its relative paths mean relative to itself).
      const bool path = k.has(kScenarioPath) || k.key == "train-data" ||
                        (k.key == "model" && s.ends_with(".json"));
      return toml_string(path ? absolute_paths(s, cwd) : s);
    }
    case ValueType::kStrings:
    case ValueType::kSteps:
      break;
  }
  throw bad();
}

// OpenCLIP's string-valued dest, or `otherwise` where it is None.
std::string string_or(const nlohmann::json& args, const char* dest, const std::string& otherwise) {
  return args.contains(dest) && args[dest].is_string() ? args[dest].get<std::string>() : otherwise;
}

// OpenCLIP's --dataset-type auto: the training data's extension decides (open_clip_train/data.py).
std::string resolved_dataset_type(const nlohmann::json& args) {
  const std::string type = string_or(args, "dataset_type", "auto");
  if (type == "synthetic") {
    throw std::invalid_argument(
        "--dataset-type synthetic: OpenCLIP's synthetic set is not cliprepro's seeded shapes; "
        "train on csv or webdataset data, or write a scenario with dataset-type = \"synthetic\"");
  }
  if (type != "auto") return type;
  const auto& data = args["train_data"];
  if (!data.is_string()) throw std::invalid_argument("--train-data is required");
  const std::string path = data.get<std::string>();
  const std::string ext = path.substr(path.find_last_of('.') + 1);
  if (ext == "csv" || ext == "tsv") return "csv";
  if (ext == "tar") return "webdataset";
  throw std::invalid_argument("--dataset-type auto cannot tell the type of --train-data " + path +
                              " (as OpenCLIP: .csv/.tsv or .tar); give --dataset-type");
}

// seeding = "openclip" (OpenCLIP's initialisation and data order: the imported command is the
// OpenCLIP run), unless OpenCLIP's own run cannot be reproduced (src/train/train_data.h).
std::string seeding_line(const nlohmann::json& args, const nlohmann::json& aug_cfg) {
  const auto use_timm = aug_cfg.value("use_timm", nlohmann::json(false));
  const char* why = nullptr;
  if (string_or(args, "dataset_type", "") == "webdataset") {
    why = "OpenCLIP's webdataset shuffle is seeded from the process id and the clock";
  } else if (use_timm == true || use_timm == "True") {
    why = "timm draws OpenCLIP's crops from Python's random";
  }
  if (why == nullptr)
    return "seeding = \"openclip\"  # cliprepro: OpenCLIP's initialisation and data order\n";
  return std::string("seeding = \"cliprepro\"  # not \"openclip\": ") + why +
         ", so no order reproduces OpenCLIP's run (docs/data.md)\n";
}

}  // namespace

std::string scenario_from_openclip(const OpenClipArgs& a, const std::vector<std::string>& command,
                                   const std::filesystem::path& cwd,
                                   const nlohmann::json& overrides) {
  std::map<std::string, const UnmappedFlag*> unmapped;
  for (const auto& u : kUnmapped) unmapped[u.dest] = &u;
  nlohmann::json args = a.args;
  const auto default_of = [&](const std::string& dest) {
    return a.defaults.contains(dest) ? a.defaults[dest] : nlohmann::json();
  };
  args["dataset_type"] = resolved_dataset_type(args);
  for (const auto& [dest, value] : overrides.items()) args[dest] = value;
  std::string device_note;
  if (string_or(args, "device", "") == "cuda" && !a.cuda) {
    args["device"] = "cpu";  // OpenCLIP's own fallback (init_distributed_device)
    device_note =
        "# device: OpenCLIP's \"cuda\" falls back to cpu where CUDA is unavailable, as "
        "here when imported.\n";
  }
  if (string_or(args, "resume", "") == "latest")
    throw std::invalid_argument("--resume latest: give the checkpoint's path");
  if (!args["name"].is_string()) args["name"] = "openclip-import";  // OpenCLIP: a timestamp

  // Every dest is a scenario key, ignored on purpose, or at OpenCLIP's default; else refused.
  std::ostringstream keys, aug, ignored;
  for (const auto& [dest, value] : args.items()) {
    const std::string flag = flag_of(dest);
    const nlohmann::json dflt = default_of(dest);
    if (dest == "aug_cfg" || find_scenario_key("", flag.substr(2)) != nullptr) continue;
    auto it = unmapped.find(dest);
    if (value == dflt) continue;
    if (it == unmapped.end()) {
      throw std::invalid_argument(flag + " " + value.dump() +
                                  " is not one of the OpenCLIP 3.3.0 flags cliprepro's importer "
                                  "knows: it cannot be mapped");
    }
    const bool replays = string_or(args, "dataset_type", "") == "replay";
    const auto what = it->second->what;
    if (what == Unmapped::kRefused || (what == Unmapped::kLoader && !replays)) {
      throw std::invalid_argument(
          flag + " " + value.dump() + " is not supported: " + it->second->why +
          (what == Unmapped::kLoader ? " (a recording of the run replays with it: "
                                       "import-openclip --replay)"
                                     : ""));
    }
    ignored << "#   " << flag << " " << value.dump() << ": "
            << (what == Unmapped::kLoader ? "how the recorded run's loader drew its batches, "
                                            "which the replay feeds as recorded"
                                          : it->second->why)
            << "\n";
  }
  // The mapped keys in the key table's (the docs') order.
  for (const auto& k : scenario_keys()) {
    if (!k.section.empty()) continue;
    std::string dest = k.key;
    for (char& c : dest) c = c == '-' ? '_' : c;
    if (!args.contains(dest) || args[dest].is_null()) continue;  // unset: cliprepro's default
    const nlohmann::json dflt = default_of(dest);
    keys << k.key << " = " << toml_value(k, args[dest], "--" + k.key, cwd)
         << (args[dest] == dflt ? "  # OpenCLIP's default" : "") << "\n";
  }
  const nlohmann::json aug_cfg = args.value("aug_cfg", nlohmann::json::object());
  for (const auto& [name, v] : aug_cfg.items()) {
    const auto* k = find_scenario_key("aug-cfg", name);
    if (k == nullptr) {
      std::string have;
      for (const auto& key : scenario_keys())
        if (key.section == "aug-cfg") have += (have.empty() ? "" : ", ") + key.key;
      throw std::invalid_argument("--aug-cfg " + name + ": not supported (cliprepro's: " + have +
                                  ")");
    }
    aug << name << " = " << toml_value(*k, v, "--aug-cfg " + name, cwd) << "\n";
  }

  std::string cmd = "open_clip_train.main";
  for (const auto& c : command) cmd += " " + shell_word(c);
  std::ostringstream out;
  out << "# Imported by `cliprepro import-openclip` from the OpenCLIP 3.3.0 command line\n#   "
      << cmd << "\n# as OpenCLIP reads it (its defaults where a flag is absent). Ignored on purpose,"
      << " each with its reason:\n"
      << (ignored.str().empty() ? "#   none\n" : ignored.str()) << device_note
      << "description = " << toml_string(cmd) << "\n"
      << keys.str() << seeding_line(args, aug_cfg);
  if (args.contains("imagenet_val") && args["imagenet_val"].is_string()) {
    out << "zeroshot-classes = \"openclip-imagenet\"  # cliprepro: OpenCLIP's zero_shot_eval "
           "(its ImageNet class names and OpenAI's templates)\n";
  }
  if (!aug.str().empty()) out << "\n[aug-cfg]\n" << aug.str();
  // OpenCLIP's own bits on this machine need LibTorch's own kernels (docs/compare.md). Last, so
  // that a caller may append more [determinism] keys.
  out << "\n[determinism]\nportable = false  # cliprepro: LibTorch's kernels, as OpenCLIP runs "
         "them (bitwise OpenCLIP here; true: the same bits on every x86-64 CPU)\n";
  return out.str();
}

}  // namespace cliprepro
