// `cliprepro import-openclip`: a scenario from an OpenCLIP 3.3.0 command line, as OpenCLIP itself
// reads it (scripts/openclip_args.py runs open_clip_train.params.parse_args: its defaults, its
// per-model lr/betas/eps, its --aug-cfg parsing). A flag whose dest is a scenario key of the same
// name (the keys are OpenCLIP's flag names) is mapped through the key table; every other flag is
// either ignored on purpose (speed or bookkeeping only, or the loader's sampling when the scenario
// replays a recording; listed in the output's header) or, when set to anything but OpenCLIP's
// default, refused by name with the reason.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cliprepro {

// What scripts/openclip_args.py writes: the command's namespace, the namespace of no flags, and
// whether CUDA is available (OpenCLIP's --device default, "cuda", is used only when it is).
struct OpenClipArgs {
  nlohmann::json args, defaults;
  bool cuda = false;
};

// The scenario text. `command`: the flags as given (quoted into its header and `description`);
// `cwd`: what relative paths in them are relative to (made absolute: the scenario may live
// elsewhere); `overrides`: dests set after parsing (a replay's dataset_type and train_data).
// Its last table is [determinism] (portable = false: OpenCLIP's kernels), so a caller may append
// keys of that table. Throws std::invalid_argument naming the flag for anything it cannot map.
std::string scenario_from_openclip(const OpenClipArgs& a, const std::vector<std::string>& command,
                                   const std::filesystem::path& cwd,
                                   const nlohmann::json& overrides = nlohmann::json::object());

}  // namespace cliprepro
