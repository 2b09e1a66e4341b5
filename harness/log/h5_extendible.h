// Row-appendable HDF5 datasets: dimension 0 unlimited, chunked (~1 MiB at most), optionally
// shuffle+deflate compressed. The log writer's per-tensor series and /digests tables are these.
#pragma once
#include <string>
#include <vector>

#include "harness/log/h5_types.h"

namespace cliprepro {

// A dataset of zero rows, each of shape `row`, growing by chunks of `chunk_rows` rows (fewer,
// and then smaller row dimensions, until a chunk fits in ~1 MiB).
H5Id create_extendible(hid_t group, const std::string& name, hid_t type,
                       const std::vector<hsize_t>& row, hsize_t chunk_rows, bool compress);

// Appends `rows` rows (each of shape `row`) at row `index`.
void append_rows(hid_t dset, hid_t memtype, const void* data, hsize_t index, hsize_t rows,
                 const std::vector<hsize_t>& row);

}  // namespace cliprepro
