#include "src/train/train_checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>

#include <charconv>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "src/log_schema.h"
#include "src/model/checkpoint.h"

namespace cliprepro {

namespace {

torch::Tensor cpu_rng_state() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_cpu_rng_state(const torch::Tensor& s) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(s);
}

// "key: checkpoint X, this run Y" for every differing setting.
std::string trajectory_differences(const std::string& saved, const std::string& current) {
  const auto a = nlohmann::json::parse(saved, nullptr, false), b = nlohmann::json::parse(current);
  if (!a.is_object()) return "\n  trajectory: the checkpoint's is not a JSON object";
  std::string out;
  for (const auto& [k, v] : b.items()) {
    const auto it = a.find(k);
    if (it == a.end() || *it != v) {
      out += "\n  " + k + ": checkpoint " + (it == a.end() ? "(absent)" : it->dump()) +
             ", this run " + v.dump();
    }
  }
  return out;
}

}  // namespace

void save_train_checkpoint(const std::string& path, const TrainState& state, int64_t step,
                           const std::string& trajectory) {
  StateDict t;
  for (const auto& [k, v] : model_state_dict(*state.model)) t.emplace_back("model/" + k, v);
  for (const auto& g : state.optimizer->groups()) {
    for (const auto& p : g.params) {
      t.emplace_back(family::kExpAvg + p.name, p.exp_avg);
      t.emplace_back(family::kExpAvgSq + p.name, p.exp_avg_sq);
      t.emplace_back(family::kOptimizerStep + p.name, p.step);
    }
  }
  if (state.scaler != nullptr) {
    t.emplace_back(tensor_name::kLossScale, state.scaler->scale_tensor());
    t.emplace_back(tensor_name::kGrowthTracker, state.scaler->growth_tracker());
  }
  t.emplace_back("rng/cpu", cpu_rng_state());
  if (torch::cuda::is_available()) {
    auto gen = at::globalContext().defaultGenerator(torch::Device(torch::kCUDA, 0));
    std::lock_guard<std::mutex> lock(gen.mutex());
    t.emplace_back("rng/cuda0", gen.get_state());
  }
  try {
    write_safetensors(path, t,
                      {{"format", kTrainCheckpointFormat},
                       {"step", std::to_string(step)},
                       {"trajectory", trajectory}});
  } catch (const std::exception& e) {
    throw std::runtime_error("checkpoint of step " + std::to_string(step) + ": " + e.what());
  }
}

int64_t load_train_checkpoint(const std::string& path, const TrainState& state,
                              const std::string& trajectory) {
  std::map<std::string, std::string> meta;
  const auto tensors = read_safetensors(path, &meta);
  if (meta["format"] != kTrainCheckpointFormat) {
    throw std::runtime_error(path + ": not a cliprepro training checkpoint (resume needs one " +
                             "written by save-every-steps / save-frequency; model weights " +
                             "alone are loaded with `cliprepro infer --checkpoint`)");
  }
  if (const auto diff = trajectory_differences(meta["trajectory"], trajectory); !diff.empty()) {
    throw std::runtime_error(path + ": written by a run with other settings; resuming would not " +
                             "continue that run:" + diff);
  }
  std::map<std::string, torch::Tensor> by_name(tensors.begin(), tensors.end());
  auto take = [&](const std::string& key) -> const torch::Tensor& {
    const auto it = by_name.find(key);
    if (it == by_name.end()) throw std::runtime_error(path + ": missing tensor '" + key + "'");
    return it->second;
  };
  StateDict model;
  for (const auto& [k, v] : tensors) {
    if (k.rfind("model/", 0) == 0) model.emplace_back(k.substr(6), v);
  }
  const auto report = load_state_dict(*state.model, model, true);
  if (!report.clean()) throw std::runtime_error(path + ": " + report.describe());
  // State is copied only into a tensor of the same shape and dtype: copy_ would broadcast a [1]
  // or convert a dtype silently.
  auto take_into = [&](torch::Tensor& dst, const std::string& key) {
    const auto& src = take(key);
    if (src.sizes() != dst.sizes() || src.scalar_type() != dst.scalar_type()) {
      std::ostringstream o;
      o << path << ": tensor '" << key << "' is " << src.scalar_type() << " " << src.sizes()
        << ", the run needs " << dst.scalar_type() << " " << dst.sizes();
      throw std::runtime_error(o.str());
    }
    dst.copy_(src);
  };
  // The step the checkpoint was written after: an integer >= 1, and no optimizer state may have
  // seen more updates than that (a skipped amp step updates nothing, so fewer is fine).
  const std::string& step_text = meta["step"];
  int64_t step = 0;
  const auto [end, ec] =
      std::from_chars(step_text.data(), step_text.data() + step_text.size(), step);
  if (step_text.empty() || ec != std::errc() || end != step_text.data() + step_text.size() ||
      step < 1) {
    throw std::runtime_error(path + ": metadata step '" + step_text +
                             "' is not a step number (an integer >= 1)");
  }
  torch::NoGradGuard no_grad;
  for (auto& g : state.optimizer->groups()) {
    for (auto& p : g.params) {
      take_into(p.exp_avg, family::kExpAvg + p.name);
      take_into(p.exp_avg_sq, family::kExpAvgSq + p.name);
      take_into(p.step, family::kOptimizerStep + p.name);
      // Without a loss scaler no step is skipped: every parameter saw exactly `step` updates.
      const double updates = p.step.item<double>();
      if (updates > double(step) || (state.scaler == nullptr && updates != double(step))) {
        throw std::runtime_error(path + ": metadata step " + step_text +
                                 " but optimizer state of " + p.name + " has " +
                                 std::to_string(int64_t(updates)) + " updates");
      }
    }
  }
  if (state.scaler != nullptr) {
    state.scaler->load(take(tensor_name::kLossScale), take(tensor_name::kGrowthTracker));
  }
  try {
    set_cpu_rng_state(take("rng/cpu"));
  } catch (
      const c10::Error& e) {  // LibTorch's message carries a C++ backtrace: keep its first line
    const std::string what = e.what_without_backtrace();
    throw std::runtime_error(path + ": tensor 'rng/cpu' is no CPU generator state (" +
                             what.substr(0, what.find('\n')) + ")");
  }
  if (torch::cuda::is_available() && by_name.count("rng/cuda0")) {
    auto gen = at::globalContext().defaultGenerator(torch::Device(torch::kCUDA, 0));
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(by_name["rng/cuda0"]);
  }
  return step;
}

}  // namespace cliprepro
