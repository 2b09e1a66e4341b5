// Model weights in and out, interchangeable with OpenCLIP: safetensors (read and write) and
// torch.save zip files (.pt/.bin; read), with PyTorch's load_state_dict strictness rules.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace cliprepro {

// Ordered (name, tensor) pairs, as a state_dict() iterates them.
using StateDict = std::vector<std::pair<std::string, torch::Tensor>>;

// Parameters then persistent buffers of every module, named by module path — the keys of
// OpenCLIP's state_dict() (ordering aside).
StateDict model_state_dict(const torch::nn::Module& model);

// Reads a checkpoint by content, not extension: safetensors, or a torch zip whose pickle is a
// state dict or a dict holding one under "state_dict" (OpenCLIP's training checkpoints). A
// leading "module." (DDP) is stripped, as OpenCLIP's load_checkpoint does. Non-tensor entries
// of a bare dict are errors; legacy (pre-1.6, non-zip) torch files are rejected with a hint.
StateDict read_checkpoint(const std::string& path);
// The same from bytes in memory; `path` names them in errors (the fuzz targets' entry point).
StateDict read_checkpoint_bytes(const std::vector<char>& bytes, const std::string& path);

StateDict read_safetensors(const std::string& path,
                           std::map<std::string, std::string>* metadata = nullptr);
// Atomic (temp file + rename). Tensors are written contiguous, in their own dtype.
void write_safetensors(const std::string& path, const StateDict& tensors,
                       const std::map<std::string, std::string>& metadata = {});

struct LoadReport {
  std::vector<std::string> missing;     // in the model, not in the checkpoint
  std::vector<std::string> unexpected;  // in the checkpoint, not in the model
  std::vector<std::string> mismatched;  // "key: checkpoint [a, b] vs model [c, d]", or dtypes
  bool clean() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string describe() const;
};

// Copies matching tensors into the model. Like PyTorch: a missing BatchNorm num_batches_tracked
// is not an error, and shape mismatches always are. Unlike PyTorch's param.copy_, a dtype that
// differs from the model's is never converted: it is a mismatch too (convert the checkpoint
// explicitly). strict=true throws std::runtime_error with the full report when not clean().
LoadReport load_state_dict(torch::nn::Module& model, const StateDict& checkpoint, bool strict);

}  // namespace cliprepro
