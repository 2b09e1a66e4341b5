#include "harness/log/h5_extendible.h"

#include <algorithm>

namespace cliprepro {
namespace {
constexpr size_t kMaxChunkBytes = 1u << 20;  // ~1 MiB chunks for full tensors
}  // namespace

H5Id create_extendible(hid_t group, const std::string& name, hid_t type,
                       const std::vector<hsize_t>& row, hsize_t chunk_rows, bool compress) {
  std::vector<hsize_t> dims{0}, maxdims{H5S_UNLIMITED}, chunk{chunk_rows};
  size_t row_bytes = H5Tget_size(type);
  for (auto d : row) {
    dims.push_back(d);
    maxdims.push_back(d);
    chunk.push_back(std::max<hsize_t>(d, 1));
    row_bytes *= std::max<hsize_t>(d, 1);
  }
  // Halve the largest row dimension until a chunk is small enough.
  while (row_bytes * chunk[0] > kMaxChunkBytes) {
    if (chunk[0] > 1) {
      chunk[0] = (chunk[0] + 1) / 2;
      continue;
    }
    auto it = std::max_element(chunk.begin() + 1, chunk.end());
    if (it == chunk.end() || *it <= 1) break;
    row_bytes = row_bytes / *it * ((*it + 1) / 2);
    *it = (*it + 1) / 2;
  }
  H5Id space =
      h5_check(H5Screate_simple(int(dims.size()), dims.data(), maxdims.data()), "space " + name);
  H5Id dcpl = h5_check(H5Pcreate(H5P_DATASET_CREATE), "dcpl");
  h5_check_status(H5Pset_chunk(dcpl.get(), int(chunk.size()), chunk.data()), "chunk " + name);
  if (compress) {
    h5_check_status(H5Pset_shuffle(dcpl.get()), "shuffle " + name);
    h5_check_status(H5Pset_deflate(dcpl.get(), 4), "deflate " + name);
  }
  return h5_check(
      H5Dcreate2(group, name.c_str(), type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
      "create dataset " + name);
}

void append_rows(hid_t dset, hid_t memtype, const void* data, hsize_t index, hsize_t rows,
                 const std::vector<hsize_t>& row) {
  std::vector<hsize_t> dims{index + rows}, start{index}, count{rows};
  for (auto d : row) {
    dims.push_back(d);
    start.push_back(0);
    count.push_back(d);
  }
  h5_check_status(H5Dset_extent(dset, dims.data()), "extend dataset");
  H5Id fspace = h5_check(H5Dget_space(dset), "file space");
  h5_check_status(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start.data(), nullptr,
                                      count.data(), nullptr),
                  "select rows");
  H5Id mspace =
      h5_check(H5Screate_simple(int(count.size()), count.data(), nullptr), "memory space");
  h5_check_status(H5Dwrite(dset, memtype, mspace.get(), fspace.get(), H5P_DEFAULT, data),
                  "write rows");
}

}  // namespace cliprepro
