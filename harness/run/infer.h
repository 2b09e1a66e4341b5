// `cliprepro infer`: one forward (and optionally backward) pass of a CLIP model on given
// inputs, every capture point written out — the C++ side of the OpenCLIP parity checks; the
// Python side (scripts/openclip_reference.py run) writes the same layout.
#pragma once
#include <string>

namespace cliprepro {

struct InferOptions {
  std::string model;       // config name or JSON path
  std::string checkpoint;  // .safetensors or torch zip; loaded strictly
  std::string inputs;      // HDF5: images (N,3,H,W) float32, tokens (N,L) int64
  std::string out;         // HDF5, see docs/hdf5-layout.md "infer files"
  bool grads = false;      // backpropagate the loss, write every parameter's gradient
  bool eval = false;       // BatchNorm with running statistics (default: training mode)
  int threads = 1;         // intra-op threads (bits of some CPU kernels depend on it)
  std::string device = "cpu";
};

void run_infer(const InferOptions& opt);

}  // namespace cliprepro
