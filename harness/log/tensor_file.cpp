#include "harness/log/tensor_file.h"

#include <cstdio>
#include <stdexcept>

#include "src/safe_file.h"

namespace cliprepro {
namespace {

torch::ScalarType dtype_of(hid_t dset, const std::string& where) {
  if (h5_has_attr(dset, "dtype")) return dtype_from_name(h5_read_string_attr(dset, "dtype"));
  H5Id type = h5_check(H5Dget_type(dset), where + ": type");
  const auto cls = H5Tget_class(type.get());
  const size_t size = H5Tget_size(type.get());
  if (cls == H5T_FLOAT) {
    if (size == 8) return torch::kFloat64;
    if (size == 4) return torch::kFloat32;
    if (size == 2) return torch::kFloat16;  // bf16 always carries the "dtype" attribute
  } else if (cls == H5T_INTEGER) {
    const bool is_signed = H5Tget_sign(type.get()) == H5T_SGN_2;
    if (size == 8 && is_signed) return torch::kInt64;
    if (size == 4 && is_signed) return torch::kInt32;
    if (size == 1 && !is_signed) return torch::kUInt8;
    if (size == 1) return torch::kInt8;
  }
  const char* kind = cls == H5T_STRING     ? "strings"
                     : cls == H5T_COMPOUND ? "compound"
                     : cls == H5T_FLOAT    ? "float"
                     : cls == H5T_INTEGER  ? "integer"
                                           : "other";
  throw std::runtime_error(where + ": unsupported HDF5 type (" + kind + ", " +
                           std::to_string(size) +
                           " bytes); a tensor is float64/32/16, bfloat16, int64/32, int8 or uint8");
}

torch::Tensor read_dataset(hid_t file, const std::string& name, const std::string& path) {
  const std::string where = path + ":/" + name;
  H5Id d = h5_check(H5Dopen2(file, name.c_str(), H5P_DEFAULT), where);
  const auto dtype = dtype_of(d.get(), where);
  H5Id space = h5_check(H5Dget_space(d.get()), where + ": space");
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(size_t(std::max(rank, 0)));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  std::vector<int64_t> shape(dims.begin(), dims.end());
  auto t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
  H5Id memtype = h5_type_for(dtype);
  if (t.numel() > 0) {
    h5_check_status(H5Dread(d.get(), memtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()),
                    where + ": read");
  }
  return t;
}

}  // namespace

TensorFileWriter::TensorFileWriter(std::string path)
    : path_(std::move(path)), tmp_(path_ + ".tmp") {
  h5_quiet();
  require_output_target(path_, "tensor file");  // renamed over it: never over a link or device
  // EXCL: a temporary is created, never opened through a link left at its name.
  std::remove(tmp_.c_str());
  file_ = h5_check(H5Fcreate(tmp_.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT),
                   "cannot create '" + tmp_ + "'");
}

TensorFileWriter::~TensorFileWriter() {
  if (file_.valid()) {
    file_.reset();
    std::remove(tmp_.c_str());  // not closed: an error path; leave nothing half-written
  }
}

void TensorFileWriter::write(const std::string& name, const torch::Tensor& t_in) {
  auto t = t_in.detach().to(torch::kCPU).contiguous();
  std::vector<hsize_t> dims(t.sizes().begin(), t.sizes().end());
  H5Id space = h5_check(dims.empty() ? H5Screate(H5S_SCALAR)
                                     : H5Screate_simple(int(dims.size()), dims.data(), nullptr),
                        name);
  H5Id type = h5_type_for(t.scalar_type());
  H5Id lcpl = h5_check(H5Pcreate(H5P_LINK_CREATE), "lcpl");
  h5_check_status(H5Pset_create_intermediate_group(lcpl.get(), 1), "lcpl");
  H5Id d = h5_check(H5Dcreate2(file_.get(), name.c_str(), type.get(), space.get(), lcpl.get(),
                               H5P_DEFAULT, H5P_DEFAULT),
                    path_ + ": cannot create dataset '" + name + "'");
  if (t.numel() > 0) {
    h5_check_status(H5Dwrite(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()),
                    path_ + ": write '" + name + "'");
  }
  h5_write_string_attr(d.get(), "dtype", dtype_name(t.scalar_type()));
}

void TensorFileWriter::attr(const std::string& name, const std::string& value) {
  h5_write_string_attr(file_.get(), name, value);
}

void TensorFileWriter::close() {
  file_.reset();
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    throw std::runtime_error("cannot rename '" + tmp_ + "' to '" + path_ + "'");
  }
}

TensorMap read_tensor_file(const std::string& path, std::map<std::string, std::string>* attrs) {
  h5_quiet();
  H5Id f = h5_check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT),
                    "cannot open HDF5 file '" + path + "'");
  TensorMap out;
  for (const auto& name : h5_object_names(f.get(), H5O_TYPE_DATASET, path + ": visit"))
    out[name] = read_dataset(f.get(), name, path);
  if (attrs != nullptr) {
    const int n = H5Aget_num_attrs(f.get());
    for (int i = 0; i < n; ++i) {
      char name[256];
      H5Id a = h5_check(H5Aopen_by_idx(f.get(), ".", H5_INDEX_NAME, H5_ITER_INC, hsize_t(i),
                                       H5P_DEFAULT, H5P_DEFAULT),
                        "attr");
      H5Aget_name(a.get(), sizeof(name), name);
      H5Id type = h5_check(H5Aget_type(a.get()), "attr type");
      // Only string attributes belong to this format; others are ignored.
      if (H5Tget_class(type.get()) == H5T_STRING)
        (*attrs)[name] = h5_read_string_attr(f.get(), name);
    }
  }
  return out;
}

}  // namespace cliprepro
