// A plain HDF5 file of named tensors (one dataset each, native dtype, "dtype" attribute) plus
// string attributes on the root: the exchange format of `cliprepro infer` and of the OpenCLIP
// reference script (scripts/openclip_reference.py), which h5py reads and writes as is.
#pragma once
#include <torch/types.h>

#include <map>
#include <string>

#include "harness/log/h5_types.h"

namespace cliprepro {

class TensorFileWriter {
 public:
  // Writes to `path`.tmp; close() renames it into place, so readers never see half a file.
  explicit TensorFileWriter(std::string path);
  ~TensorFileWriter();
  TensorFileWriter(const TensorFileWriter&) = delete;
  TensorFileWriter& operator=(const TensorFileWriter&) = delete;

  // `name` may contain '/': groups are created on the way. The tensor is copied to host as is.
  void write(const std::string& name, const torch::Tensor& t);
  void attr(const std::string& name, const std::string& value);
  void close();

 private:
  std::string path_, tmp_;
  H5Id file_;
};

using TensorMap = std::map<std::string, torch::Tensor>;

// Every dataset in the file (names without the leading '/'), in its stored dtype.
TensorMap read_tensor_file(const std::string& path,
                           std::map<std::string, std::string>* attrs = nullptr);

}  // namespace cliprepro
