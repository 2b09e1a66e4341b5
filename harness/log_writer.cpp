#include "harness/log_writer.h"

#include <algorithm>
#include <stdexcept>

#include "harness/digest.h"

namespace cliprepro {
namespace {

constexpr hsize_t kSeriesChunk = 256;        // rows per chunk of the 1-D step series
constexpr size_t kMaxChunkBytes = 1u << 20;  // ~1 MiB chunks for full tensors

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

// Appends `rows` rows at `index` (rows of shape `row`).
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
                  "select row");
  H5Id mspace =
      h5_check(H5Screate_simple(int(count.size()), count.data(), nullptr), "memory space");
  h5_check_status(H5Dwrite(dset, memtype, mspace.get(), fspace.get(), H5P_DEFAULT, data),
                  "write row");
}

}  // namespace

struct LogWriter::Series {
  H5Id group, steps, digest, order, full_steps, full;
  H5Id type;  // HDF5 type of the tensor's dtype
  std::vector<hsize_t> shape;
  hsize_t n = 0, n_full = 0;  // rows on disk
  // Rows not yet on disk (buffered mode keeps them until close).
  std::vector<int64_t> pending_steps;
  std::vector<uint64_t> pending_digests;
  std::vector<int32_t> pending_order;
  std::vector<int64_t> pending_full_steps;
  std::vector<uint8_t> pending_full;  // raw bytes of whole rows
};

void LogWriter::flush_series() {
  for (auto& [name, sp] : series_) {
    Series& s = *sp;
    const hsize_t k = s.pending_steps.size();
    if (k == 0) continue;
    append_rows(s.steps.get(), H5T_NATIVE_INT64, s.pending_steps.data(), s.n, k, {});
    append_rows(s.digest.get(), H5T_NATIVE_UINT64, s.pending_digests.data(), s.n, k, {});
    append_rows(s.order.get(), H5T_NATIVE_INT32, s.pending_order.data(), s.n, k, {});
    s.n += k;
    s.pending_steps.clear();
    s.pending_digests.clear();
    s.pending_order.clear();
    const hsize_t kf = s.pending_full_steps.size();
    if (kf == 0) continue;
    append_rows(s.full_steps.get(), H5T_NATIVE_INT64, s.pending_full_steps.data(), s.n_full, kf,
                {});
    append_rows(s.full.get(), s.type.get(), s.pending_full.data(), s.n_full, kf, s.shape);
    s.n_full += kf;
    s.pending_full_steps.clear();
    s.pending_full.clear();
  }
}

LogWriter::LogWriter(const std::filesystem::path& path, LogSelection selection, int64_t last_step,
                     const nlohmann::json& provenance, WriteMode mode)
    : path_(path), selection_(std::move(selection)), last_step_(last_step), mode_(mode) {
  h5_quiet();
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  // 1.10 file format: compact chunk indexes (extensible arrays) instead of a B-tree per
  // dataset, which would otherwise dominate the size of logs with hundreds of tensors.
  H5Id fapl = h5_check(H5Pcreate(H5P_FILE_ACCESS), "fapl");
  h5_check_status(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V110, H5F_LIBVER_LATEST),
                  "libver bounds");
  file_ = h5_check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()),
                   "cannot create log file " + path.string());
  const hid_t root = file_.get();
  h5_write_string_attr(root, "format", "cliprepro-log");
  h5_write_string_attr(root, "format_version", std::to_string(kLogFormatVersion));
  h5_write_string_attr(root, "status", "running");
  for (const auto& [key, value] : provenance.items()) {
    h5_write_string_attr(root, key, value.is_string() ? value.get<std::string>() : value.dump(2));
  }
  H5Id lcpl = h5_check(H5Pcreate(H5P_LINK_CREATE), "lcpl");
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  H5Id g = h5_check(H5Gcreate2(root, "tensors", lcpl.get(), H5P_DEFAULT, H5P_DEFAULT),
                    "create /tensors");
}

LogWriter::~LogWriter() {
  try {
    if (file_.valid()) H5Fflush(file_.get(), H5F_SCOPE_GLOBAL);
  } catch (...) {
  }
}

LogWriter::Series& LogWriter::series_for(const NamedTensor& t) {
  auto it = series_.find(t.name);
  if (it != series_.end()) return *it->second;
  auto s = std::make_unique<Series>();
  H5Id lcpl = h5_check(H5Pcreate(H5P_LINK_CREATE), "lcpl");
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  const std::string gpath = "/tensors/" + t.name;
  s->group = h5_check(H5Gcreate2(file_.get(), gpath.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT),
                      "create group " + gpath);
  h5_write_string_attr(s->group.get(), "dtype", dtype_name(t.tensor.scalar_type()));
  h5_write_string_attr(s->group.get(), "phase", phase_name(t.phase));
  std::vector<int64_t> shape(t.tensor.sizes().begin(), t.tensor.sizes().end());
  h5_write_i64_array_attr(s->group.get(), "shape", shape);
  for (auto d : shape) s->shape.push_back(hsize_t(d));
  s->type = h5_type_for(t.tensor.scalar_type());
  s->steps = create_extendible(s->group.get(), "steps", H5T_STD_I64LE, {}, kSeriesChunk,
                               compress_series());
  s->digest = create_extendible(s->group.get(), "digest", H5T_STD_U64LE, {}, kSeriesChunk,
                                compress_series());
  s->order = create_extendible(s->group.get(), "order", H5T_STD_I32LE, {}, kSeriesChunk,
                               compress_series());
  return *series_.emplace(t.name, std::move(s)).first->second;
}

void LogWriter::write(const StepRecord& record) {
  if (!file_.valid()) throw std::runtime_error("log writer is closed");
  const bool digest_step = selection_.wants_digest(record.step);
  int32_t order = 0;
  for (const auto& t : record.tensors) {
    const bool full = t.tensor.numel() > 0 &&
                      selection_.wants_full(t.name, t.tensor.dim(), record.step, last_step_);
    ++order;
    if (!digest_step && !full) continue;
    Series& s = series_for(t);
    if (std::vector<hsize_t>(t.tensor.sizes().begin(), t.tensor.sizes().end()) != s.shape) {
      throw std::runtime_error("tensor " + t.name + " changed shape at step " +
                               std::to_string(record.step));
    }
    auto host = host_contiguous(t.tensor);
    const uint64_t digest = bytes_digest(host.data_ptr(), host.nbytes());
    const int32_t ord = order - 1;
    s.pending_steps.push_back(record.step);
    s.pending_digests.push_back(digest);
    s.pending_order.push_back(ord);
    if (full) {
      if (!s.full.valid()) {
        s.full_steps = create_extendible(s.group.get(), "full_steps", H5T_STD_I64LE, {},
                                         kSeriesChunk, compress_series());
        s.full = create_extendible(s.group.get(), "full", s.type.get(), s.shape,
                                   s.shape.empty() ? kSeriesChunk : 1, compress_series());
        if (t.tensor.scalar_type() == torch::kBFloat16) {
          h5_write_string_attr(s.full.get(), "dtype", "bfloat16");
        }
      }
      // Memory type = file type: the raw bits go to disk unconverted.
      s.pending_full_steps.push_back(record.step);
      const auto* bytes = static_cast<const uint8_t*>(host.data_ptr());
      s.pending_full.insert(s.pending_full.end(), bytes, bytes + host.nbytes());
    }
  }
  if (mode_ == WriteMode::kStreaming) {
    flush_series();
    h5_write_string_attr(file_.get(), "last_step", std::to_string(record.step));
    h5_check_status(H5Fflush(file_.get(), H5F_SCOPE_GLOBAL), "flush " + path_.string());
  }
  last_written_ = record.step;
}

void LogWriter::close() {
  if (!file_.valid()) return;
  flush_series();
  h5_write_string_attr(file_.get(), "last_step", std::to_string(last_written_));
  h5_write_string_attr(file_.get(), "status", "complete");
  series_.clear();
  file_.reset();
}

}  // namespace cliprepro
