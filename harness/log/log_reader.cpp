#include "harness/log/log_reader.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <stdexcept>

#include "harness/log/log_companion.h"
#include "harness/log/log_format.h"
#include "src/safe_file.h"

namespace cliprepro {
namespace {

template <typename T>
std::vector<T> read_1d(hid_t group, const char* name, hid_t memtype) {
  H5Id d = h5_check(H5Dopen2(group, name, H5P_DEFAULT), std::string("open dataset ") + name);
  H5Id space = h5_check(H5Dget_space(d.get()), "space");
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  std::vector<T> v(n > 0 ? size_t(n) : 0);
  if (!v.empty())
    h5_check_status(H5Dread(d.get(), memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), "read");
  return v;
}

struct VisitState {
  int format_version;
  int64_t last_complete_step;
  int64_t last_full_step;  // /progress's step; any step in logs without one (format 1)
  std::map<std::string, TensorSeries>* series;
  std::map<int64_t, std::string> by_index;  // format 2: `series` attribute -> name
  int64_t rows_past_progress = 0;
};

// Rows are written in increasing (step, order); the first that is not (a row a failed or killed
// flush never wrote reads as zeros) ends what was written.
bool follows(const DigestRow& prev, const DigestRow& r) {
  return r.step > prev.step || (r.step == prev.step && r.order > prev.order);
}

// Format 1 kept each tensor's step series in its own group.
void read_v1_series(hid_t g, TensorSeries& s) {
  s.steps = read_1d<int64_t>(g, "steps", H5T_NATIVE_INT64);
  s.digests = read_1d<uint64_t>(g, "digest", H5T_NATIVE_UINT64);
  s.order = read_1d<int32_t>(g, "order", H5T_NATIVE_INT32);
  size_t n = std::min({s.steps.size(), s.digests.size(), s.order.size()});
  if (H5Lexists(g, "stats", H5P_DEFAULT) > 0) {
    auto flat = read_1d<double>(g, "stats", H5T_NATIVE_DOUBLE);
    constexpr size_t kColumns = kStatColumns.size();
    s.stats.resize(flat.size() / kColumns);
    for (size_t i = 0; i < s.stats.size(); ++i)
      std::copy_n(flat.begin() + long(kColumns * i), kColumns, s.stats[i].begin());
    n = std::min(n, s.stats.size());
    s.stats.resize(n);
  }
  // A killed run can leave series of unequal length: keep the rows present in all of them.
  s.steps.resize(n);
  s.digests.resize(n);
  s.order.resize(n);
}

// Format 2: every tensor's rows in /digests, in step order. /progress names how many rows its
// step covers: rows past them (a killed or failed run's unfinished flush) are left out, and a
// table that holds fewer, or rows out of order among them, is damaged. Logs whose /progress
// has no row count keep the rows up to the first out of order.
void read_digest_table(hid_t file, const std::filesystem::path& path,
                       std::optional<int64_t> trusted_rows, VisitState& st) {
  const int64_t last_complete_step = st.last_complete_step;
  H5Id d = h5_check(H5Dopen2(file, kDigestTable, H5P_DEFAULT), "open /digests");
  H5Id ftype = h5_check(H5Dget_type(d.get()), "/digests type");
  const bool stats = H5Tget_member_index(ftype.get(), "stats") >= 0;
  H5Id space = h5_check(H5Dget_space(d.get()), "space");
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  std::vector<DigestRow> rows(n > 0 ? size_t(n) : 0);
  if (!rows.empty()) {
    H5Id mtype = digest_row_mem_type(stats);
    h5_check_status(H5Dread(d.get(), mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, rows.data()),
                    "read /digests");
  }
  const auto damaged = [&](const std::string& why) {
    return std::runtime_error(path.string() + " is damaged: " + why +
                              " (its writer failed or was killed mid-write?)");
  };
  if (trusted_rows) {
    if (*trusted_rows < 0 || *trusted_rows > int64_t(rows.size())) {
      throw damaged("/progress says /digests holds " + std::to_string(*trusted_rows) +
                    " rows up to step " + std::to_string(last_complete_step) + ", it has " +
                    std::to_string(rows.size()));
    }
    st.rows_past_progress = int64_t(rows.size()) - *trusted_rows;
    rows.resize(size_t(*trusted_rows));
  }
  for (size_t i = 1; i < rows.size(); ++i) {
    if (follows(rows[i - 1], rows[i])) continue;
    if (trusted_rows) {
      throw damaged("/digests row " + std::to_string(i) + " (step " + std::to_string(rows[i].step) +
                    ") does not follow row " + std::to_string(i - 1) + " (step " +
                    std::to_string(rows[i - 1].step) + ")");
    }
    rows.resize(i);
  }
  for (const auto& r : rows) {
    if (r.step > last_complete_step) {
      if (trusted_rows) {
        throw damaged("/digests holds step " + std::to_string(r.step) +
                      " below /progress's row count, past its step " +
                      std::to_string(last_complete_step));
      }
      ++st.rows_past_progress;
      continue;
    }
    auto it = st.by_index.find(r.series);
    if (it == st.by_index.end()) {
      throw std::runtime_error("/digests names series " + std::to_string(r.series) +
                               ", which no group under /tensors has");
    }
    TensorSeries& s = (*st.series)[it->second];
    s.steps.push_back(r.step);
    s.digests.push_back(r.digest);
    s.order.push_back(r.order);
    if (stats) s.stats.push_back(r.stats);
  }
}

void read_series(hid_t root, const char* name, VisitState* st) {
  H5Id g = h5_check(H5Gopen2(root, name, H5P_DEFAULT), std::string("open group ") + name);
  const bool v1 = st->format_version == 1;
  if (v1 ? H5Lexists(g.get(), "digest", H5P_DEFAULT) <= 0 : !h5_has_attr(g.get(), "series"))
    return;  // an intermediate group of a dotted/slashed name
  TensorSeries s;
  s.name = name;
  s.dtype = h5_read_string_attr(g.get(), "dtype");
  s.phase = h5_read_string_attr(g.get(), "phase");
  s.shape = h5_read_i64_array_attr(g.get(), "shape");
  if (v1) {
    read_v1_series(g.get(), s);
  } else {
    st->by_index[h5_read_i64_array_attr(g.get(), "series").at(0)] = s.name;
  }
  if (H5Lexists(g.get(), "full_steps", H5P_DEFAULT) > 0) {
    s.full_steps = read_1d<int64_t>(g.get(), "full_steps", H5T_NATIVE_INT64);
    H5Id d = h5_check(H5Dopen2(g.get(), "full", H5P_DEFAULT), "open full");
    H5Id space = h5_check(H5Dget_space(d.get()), "space");
    std::vector<hsize_t> dims(size_t(std::max(1, H5Sget_simple_extent_ndims(space.get()))));
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    s.full_steps.resize(std::min<size_t>(s.full_steps.size(), dims[0]));
    // Only the increasing prefix up to /progress was written (see read_digest_table).
    size_t n = 0;
    while (n < s.full_steps.size() && s.full_steps[n] <= st->last_full_step &&
           (n == 0 || s.full_steps[n] > s.full_steps[n - 1]))
      ++n;
    s.full_steps.resize(n);
  }
  (*st->series)[s.name] = std::move(s);
}

}  // namespace

LogReader::LogReader(const std::filesystem::path& path, Companion companion) : path_(path) {
  try {
    open(companion);
  } catch (const std::exception& e) {
    // HDF5's messages name the object, not the file: every error says which log it is about.
    const std::string what = e.what();
    if (what.find(path.string()) != std::string::npos) throw;
    throw std::runtime_error(path.string() + ": " + what);
  }
}

void LogReader::open(Companion companion) {
  const auto& path = path_;
  h5_quiet();
  if (!std::filesystem::exists(path))
    throw std::runtime_error("no such log file: " + path.string());
  require_regular_file(path, "log");  // a FIFO would block HDF5 (and the hash) forever
  if (companion == Companion::kCheck) check_recorded_sha256(path);
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  // A run killed while writing leaves its file marked as open for SWMR writing.
  // SWMR readers retry a metadata read whose checksum fails 100 times by default, sleeping in
  // between (a writer may be mid-flush): on a damaged file that took ~10 s per object. A few
  // attempts still ride out a live writer's flush.
  if (f < 0) {
    H5Id fapl = h5_check(H5Pcreate(H5P_FILE_ACCESS), "create file access properties");
    h5_check_status(H5Pset_metadata_read_attempts(fapl.get(), 4), "set metadata read attempts");
    f = H5Fopen(path.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl.get());
  }
  file_ = h5_check(f, "cannot open " + path.string() + " (not an HDF5 file?)");
  for (const auto& name : h5_attr_names(file_.get(), "read root attributes"))
    attrs_[name] = h5_read_string_attr(file_.get(), name);
  if (attr("format") != "cliprepro-log") {
    throw std::runtime_error(path.string() + " is not a cliprepro log (no format attribute)");
  }
  H5Id tensors =
      h5_check(H5Gopen2(file_.get(), "tensors", H5P_DEFAULT), "open /tensors in " + path.string());
  std::optional<int64_t> trusted_rows;  // [step, rows] since 2026-12; [step] before
  if (H5Lexists(file_.get(), "progress", H5P_DEFAULT) > 0) {
    const auto progress = read_1d<int64_t>(file_.get(), "progress", H5T_NATIVE_INT64);
    if (progress.empty()) throw std::runtime_error(path.string() + ": /progress is empty");
    last_complete_step_ = progress[0];
    if (progress.size() >= 2) trusted_rows = progress[1];
  }
  const std::string version = attr("format_version");
  if (version != "1" && version != std::to_string(kLogFormatVersion)) {
    throw std::runtime_error(path.string() + " has log format version " + version +
                             "; this cliprepro reads versions 1 to " +
                             std::to_string(kLogFormatVersion));
  }
  const int64_t last_full_step = H5Lexists(file_.get(), "progress", H5P_DEFAULT) > 0
                                     ? last_complete_step_
                                     : std::numeric_limits<int64_t>::max();
  VisitState st{std::stoi(version), last_complete_step_, last_full_step, &series_, {}};
  // The names first, then each series once HDF5's iteration has returned: an error must never
  // leave through HDF5's C frames. Leaving by exception skips the API's exit: libhdf5's global
  // lock stays held (every other thread's HDF5 call then waits forever), and the file stays open
  // inside HDF5, so the next file opened at the same inode (a log rewritten in place) was read
  // through the old one's cached metadata: the fuzzer's heap overflow in H5Dread.
  for (const auto& name :
       h5_object_names(tensors.get(), H5O_TYPE_GROUP, "walk /tensors in " + path.string()))
    read_series(tensors.get(), name.c_str(), &st);
  if (st.format_version >= 2) read_digest_table(file_.get(), path_, trusted_rows, st);
  rows_past_progress_ = st.rows_past_progress;
}

std::string LogReader::unclean_reason() const {
  std::string why;
  if (!complete()) {
    why = "was not closed cleanly (status '" + attr("status") + "', last complete step " +
          std::to_string(last_complete_step_) + ")";
  }
  if (rows_past_progress_ > 0) {
    why += std::string(why.empty() ? "" : "; it ") + "holds " +
           std::to_string(rows_past_progress_) + " digest rows past its last complete step " +
           std::to_string(last_complete_step_) + ", left unread";
  }
  return why;
}

std::string LogReader::attr(const std::string& name) const {
  auto it = attrs_.find(name);
  return it == attrs_.end() ? std::string() : it->second;
}

const TensorSeries* LogReader::find(const std::string& name) const {
  auto it = series_.find(name);
  return it == series_.end() ? nullptr : &it->second;
}

torch::Tensor LogReader::read_full(const std::string& name, int64_t step) const {
  const TensorSeries* s = find(name);
  if (s == nullptr) throw std::runtime_error("no tensor " + name + " in " + path_.string());
  auto it = std::find(s->full_steps.begin(), s->full_steps.end(), step);
  if (it == s->full_steps.end()) {
    throw std::runtime_error("no full tensor " + name + " at step " + std::to_string(step));
  }
  return read_full_rows(name, int64_t(it - s->full_steps.begin()), 1).squeeze(0);
}

torch::Tensor LogReader::read_full_rows(const std::string& name, int64_t row0, int64_t rows) const {
  const TensorSeries* s = find(name);
  if (s == nullptr) throw std::runtime_error("no tensor " + name + " in " + path_.string());
  if (row0 < 0 || rows < 0 || row0 + rows > int64_t(s->full_steps.size())) {
    throw std::runtime_error("full rows out of range for " + name);
  }
  const std::string dpath = "/tensors/" + name + "/full";
  H5Id d = h5_check(H5Dopen2(file_.get(), dpath.c_str(), H5P_DEFAULT),
                    "open " + dpath + " in " + path_.string());
  const auto dtype = dtype_from_name(s->dtype);
  std::vector<int64_t> out_shape{rows};
  out_shape.insert(out_shape.end(), s->shape.begin(), s->shape.end());
  auto out = torch::empty(out_shape, torch::TensorOptions().dtype(dtype));
  if (rows == 0 || out.numel() == 0) return out;
  std::vector<hsize_t> start{hsize_t(row0)}, count{hsize_t(rows)};
  for (auto dim : s->shape) {
    start.push_back(0);
    count.push_back(hsize_t(dim));
  }
  H5Id fspace = h5_check(H5Dget_space(d.get()), "space");
  h5_check_status(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start.data(), nullptr,
                                      count.data(), nullptr),
                  "select");
  H5Id mspace =
      h5_check(H5Screate_simple(int(count.size()), count.data(), nullptr), "memory space");
  H5Id type = h5_type_for(dtype);  // the file's own type: bits are read unconverted
  h5_check_status(
      H5Dread(d.get(), type.get(), mspace.get(), fspace.get(), H5P_DEFAULT, out.data_ptr()),
      "read " + dpath + " in " + path_.string());
  return out;
}

}  // namespace cliprepro
