#include "harness/run/replay_log.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "harness/log/log_reader.h"
#include "src/log_schema.h"

namespace cliprepro {
namespace {

constexpr const char* kReplayDataHint =
    "a replay needs data/* stored at every step: record with `python -m cliprepro.record` "
    "(stores them by default), or for a cliprepro run set [log] full-tensors to include "
    "\"data/*\" with full-steps = [\"0:\"]";
constexpr const char* kReplayStateHint =
    "a replay starts from the recorded initial state, params/* and buffers/* stored at step 0: "
    "record with `python -m cliprepro.record` (stores them by default), or for a cliprepro run "
    "set [log] full-tensors to include \"params/*\", \"buffers/*\" with step 0 in full-steps";

nlohmann::json replay_manifest(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("train-data: cannot read " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  nlohmann::json m = nlohmann::json::parse(text.str(), nullptr, false);
  if (m.is_discarded() || !m.is_object() || !m.contains("world_size") ||
      !m["world_size"].is_number_integer() || !m.contains("logs") || !m["logs"].is_array() ||
      m["logs"].size() != m["world_size"].get<uint64_t>() ||
      !std::all_of(m["logs"].begin(), m["logs"].end(),
                   [](const nlohmann::json& l) { return l.is_string(); })) {
    throw std::runtime_error(path.string() +
                             ": not a run manifest (a JSON object with integer world_size and "
                             "`logs`, one file name per rank)");
  }
  return m;
}

// The log rank `rank` replays.
std::filesystem::path replay_log_path(const TrainConfig& cfg, int rank) {
  const std::filesystem::path given(cfg.data.train_data);
  const int64_t world = cfg.dist.world_size;
  if (given.extension() == ".json") {  // <name>.manifest.json
    const nlohmann::json m = replay_manifest(given);
    const int64_t recorded = m["world_size"].get<int64_t>();
    if (recorded != world) {
      throw std::runtime_error(given.string() + ": the manifest of a " + std::to_string(recorded) +
                               "-rank run, but this replay runs at world size " +
                               std::to_string(world) + ": launch it with torchrun on " +
                               std::to_string(recorded) + " ranks");
    }
    return given.parent_path() / m["logs"][size_t(rank)].get<std::string>();
  }
  if (world != 1) {
    throw std::runtime_error("train-data " + given.string() + ": a replay at world size " +
                             std::to_string(world) + " needs the <name>.manifest.json of a " +
                             std::to_string(world) + "-rank run (rank r replays its logs[r])");
  }
  return given;
}

// The row of `step` in a full dataset (its full_steps ascend, as written); -1 when not stored.
// Binary search: a replay looks up every step of the run.
int64_t replay_row(const TensorSeries* s, int64_t step) {
  if (s == nullptr) return -1;
  const auto it = std::lower_bound(s->full_steps.begin(), s->full_steps.end(), step);
  return it != s->full_steps.end() && *it == step ? int64_t(it - s->full_steps.begin()) : -1;
}

class LogReplaySource final : public ReplaySource {
 public:
  LogReplaySource(const std::filesystem::path& path, const TrainConfig& cfg) : log_(path) {
    const std::string text = log_.attr("resolved_config");
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (text.empty() || j.is_discarded() || !j.is_object()) {
      throw std::runtime_error(origin() +
                               ": no resolved_config (JSON) attribute; a replay takes the "
                               "recorded run's train-num-samples from it");
    }
    const auto n = j.find("train-num-samples");
    if (n == j.end() || !n->is_number_integer() || n->get<int64_t>() < 1) {
      throw std::runtime_error(origin() +
                               ": resolved_config has no positive integer train-num-samples; a "
                               "replay takes the recorded run's epoch from it");
    }
    train_num_samples_ = n->get<int64_t>();
    // The scenario bounded its own schedule; the log's epoch is bounded here (no overflow).
    TrainConfig run = cfg;
    run.data.train_num_samples = train_num_samples_;
    int64_t total = 0;
    if (cfg.steps == 0 && __builtin_mul_overflow(run.steps_per_epoch(), cfg.epochs, &total)) {
      throw std::runtime_error(origin() + ": train-num-samples " +
                               std::to_string(train_num_samples_) + " x epochs " +
                               std::to_string(cfg.epochs) + " is not a schedule that can be meant");
    }
    const auto w = j.find("world-size");
    if (w != j.end() && w->is_number_integer() && w->get<int64_t>() != cfg.dist.world_size) {
      const std::string recorded = std::to_string(w->get<int64_t>());
      throw std::runtime_error(origin() + ": recorded at world size " + recorded +
                               " (one rank's log), but this replay runs at world size " +
                               std::to_string(cfg.dist.world_size) +
                               ": replay the run's <name>.manifest.json under torchrun on " +
                               recorded + " ranks");
    }
    expect(j, "batch-size", cfg.batch_size);
    expect(j, "accum-freq", cfg.optim.accum_freq);
  }

  std::string origin() const override { return log_.path().string(); }
  int64_t train_num_samples() const override { return train_num_samples_; }

  void require_steps(int64_t first, int64_t last) const override {
    const int64_t end = std::min(last, recorded_last_step());
    std::vector<const char*> names = {tensor_name::kImages, tensor_name::kTexts,
                                      tensor_name::kSampleIds};
    if (log_.find(tensor_name::kSampleKeys) != nullptr) names.push_back(tensor_name::kSampleKeys);
    for (const char* name : names) {
      const TensorSeries* s = log_.find(name);
      for (int64_t step = first; step <= end; ++step) {
        if (replay_row(s, step) < 0) missing_data(name, step);
      }
    }
    if (last > recorded_last_step()) {
      throw std::runtime_error(origin() + " ends at step " + std::to_string(recorded_last_step()) +
                               ", but this replay runs to step " + std::to_string(last) +
                               ": set steps = " + std::to_string(recorded_last_step()) +
                               " (or fewer), or epochs as the recorded run had them");
    }
  }

  ReplayStepData step_data(int64_t step) const override {
    // The trainer asks once per micro-batch: accum-freq times for one step.
    if (step == cached_step_) return cached_;
    auto read = [&](const char* name) {
      const int64_t row = replay_row(log_.find(name), step);
      if (row < 0) missing_data(name, step);
      return log_.read_full_rows(name, row, 1).squeeze(0);
    };
    // A recording of a WebDataset pipeline also holds each sample's key: the replay logs it too.
    const bool keys = log_.find(tensor_name::kSampleKeys) != nullptr;
    cached_ = {read(tensor_name::kSampleIds), read(tensor_name::kImages), read(tensor_name::kTexts),
               keys ? read(tensor_name::kSampleKeys) : torch::Tensor()};
    cached_step_ = step;
    return cached_;
  }

  torch::Tensor initial_tensor(const std::string& log_name) const override {
    const TensorSeries* s = log_.find(log_name);
    if (s == nullptr) {
      throw std::runtime_error(origin() + " has no tensor " + log_name +
                               ", which the model has: was the run recorded with another model?");
    }
    const int64_t row = replay_row(s, 0);
    if (row < 0 && !s->steps.empty() && s->steps.front() > 0) {
      throw std::runtime_error(
          origin() + " starts at step " + std::to_string(s->steps.front()) +
          " (recorded with --window or --resume), and a replay runs from step 0's state: compare "
          "it with another recording of the same steps, or record from the start");
    }
    if (row < 0) {
      throw std::runtime_error(origin() + ": no full " + log_name + " at step 0; " +
                               kReplayStateHint);
    }
    return log_.read_full_rows(log_name, row, 1).squeeze(0);
  }

 private:
  [[noreturn]] void missing_data(const char* name, int64_t step) const {
    throw std::runtime_error(origin() + ": no full " + name + " at step " + std::to_string(step) +
                             "; " + kReplayDataHint);
  }
  // The last step the log holds (its /progress; else the last step with a sample-id row).
  int64_t recorded_last_step() const {
    if (log_.last_complete_step() >= 0) return log_.last_complete_step();
    const TensorSeries* s = log_.find(tensor_name::kSampleIds);
    return s != nullptr && !s->steps.empty() ? s->steps.back() : 0;
  }
  void expect(const nlohmann::json& j, const char* key, int64_t run_value) const {
    const auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() == run_value) return;
    throw std::runtime_error(origin() + ": recorded with " + key + " " +
                             std::to_string(it->get<int64_t>()) + ", but this replay runs with " +
                             std::to_string(run_value) +
                             ": a replay feeds the recorded batches "
                             "as they were split, so " +
                             key + " must be the recorded run's");
  }

  LogReader log_;
  int64_t train_num_samples_ = 0;
  mutable int64_t cached_step_ = -1;
  mutable ReplayStepData cached_;
};

}  // namespace

std::shared_ptr<const ReplaySource> open_replay_log(const TrainConfig& cfg, int rank) {
  return std::make_shared<LogReplaySource>(replay_log_path(cfg, rank), cfg);
}

}  // namespace cliprepro
