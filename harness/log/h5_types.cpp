#include "harness/log/h5_types.h"

#include <algorithm>

#include <stdexcept>
#include <utility>

namespace cliprepro {

herr_t H5Id::close() {
  if (id_ < 0) return 0;
  const hid_t id = std::exchange(id_, H5I_INVALID_HID);
  switch (H5Iget_type(id)) {
    case H5I_FILE:
      return H5Fclose(id);
    case H5I_GROUP:
      return H5Gclose(id);
    case H5I_DATASET:
      return H5Dclose(id);
    case H5I_DATASPACE:
      return H5Sclose(id);
    case H5I_DATATYPE:
      return H5Tclose(id);
    case H5I_ATTR:
      return H5Aclose(id);
    case H5I_GENPROP_LST:
      return H5Pclose(id);
    default:
      return 0;
  }
}

namespace {

// The operating system's reason for the failure HDF5 just reported, when it names one (its
// file drivers record "errno = 28, error message = 'No space left on device'"); otherwise the
// innermost description on HDF5's error stack. Empty when the stack is empty.
std::string h5_error_detail() {
  struct Found {
    std::string os_reason, innermost;
  } found;
  auto visit = [](unsigned, const H5E_error2_t* e, void* data) -> herr_t {
    auto* f = static_cast<Found*>(data);
    const std::string desc = e->desc != nullptr ? e->desc : "";
    const std::string key = "error message = '";
    if (const auto at = desc.find(key); at != std::string::npos && f->os_reason.empty()) {
      const auto begin = at + key.size();
      f->os_reason = desc.substr(begin, desc.find('\'', begin) - begin);
    }
    if (f->innermost.empty() && !desc.empty()) f->innermost = desc;
    return 0;
  };
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, visit, &found);
  H5Eclear2(H5E_DEFAULT);
  return found.os_reason.empty() ? found.innermost : found.os_reason;
}

[[noreturn]] void throw_h5_error(const std::string& what) {
  const std::string detail = h5_error_detail();
  throw std::runtime_error("HDF5: " + what + (detail.empty() ? "" : ": " + detail));
}

}  // namespace

H5Id h5_check(hid_t id, const std::string& what) {
  if (id < 0) throw_h5_error(what);
  return H5Id(id);
}

void h5_check_status(herr_t status, const std::string& what) {
  if (status < 0) throw_h5_error(what);
}

namespace {
struct NameList {
  H5O_type_t type;
  std::vector<std::string> names;
  bool failed = false;
};
}  // namespace

std::vector<std::string> h5_object_names(hid_t root, H5O_type_t type, const std::string& what) {
  NameList list{type, {}};
  auto visit = [](hid_t, const char* name, const H5O_info_t* info, void* data) -> herr_t {
    auto* l = static_cast<NameList*>(data);
    try {
      if (info->type == l->type) l->names.emplace_back(name);
      return 0;
    } catch (...) {
      l->failed = true;
      return -1;
    }
  };
  h5_check_status(H5Ovisit2(root, H5_INDEX_NAME, H5_ITER_INC, visit, &list, H5O_INFO_BASIC), what);
  if (list.failed) throw std::runtime_error("HDF5: " + what + ": out of memory");
  return list.names;
}

std::vector<std::string> h5_attr_names(hid_t obj, const std::string& what) {
  NameList list{H5O_TYPE_UNKNOWN, {}};
  auto visit = [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
    auto* l = static_cast<NameList*>(data);
    try {
      l->names.emplace_back(name);
      return 0;
    } catch (...) {
      l->failed = true;
      return -1;
    }
  };
  hsize_t idx = 0;
  h5_check_status(H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, visit, &list), what);
  if (list.failed) throw std::runtime_error("HDF5: " + what + ": out of memory");
  return list.names;
}

namespace {
// HDF5 closes every file still open at exit, flushing it. A file whose write failed (a full
// disk) stays open after a failed H5Fclose, and that second flush at exit crashes inside
// libhdf5 (SIGSEGV in H5F__close_cb). Every file here is closed by its owner (H5Id), so the
// library is told before its first use not to run its own exit-time cleanup.
const bool kNoExitCleanup = [] {
  H5dont_atexit();
  return true;
}();
}  // namespace

void h5_quiet() {
  (void)kNoExitCleanup;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

std::string dtype_name(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32:
      return "float32";
    case torch::kFloat64:
      return "float64";
    case torch::kFloat16:
      return "float16";
    case torch::kBFloat16:
      return "bfloat16";
    case torch::kInt64:
      return "int64";
    case torch::kInt32:
      return "int32";
    case torch::kUInt8:
      return "uint8";
    case torch::kBool:
      return "bool";
    default:
      throw std::runtime_error(std::string("unsupported dtype ") + c10::toString(t));
  }
}

torch::ScalarType dtype_from_name(const std::string& n) {
  if (n == "float32") return torch::kFloat32;
  if (n == "float64") return torch::kFloat64;
  if (n == "float16") return torch::kFloat16;
  if (n == "bfloat16") return torch::kBFloat16;
  if (n == "int64") return torch::kInt64;
  if (n == "int32") return torch::kInt32;
  if (n == "uint8") return torch::kUInt8;
  if (n == "bool") return torch::kBool;
  throw std::runtime_error("unknown dtype name '" + n + "'");
}

H5Id h5_type_for(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32:
      return h5_check(H5Tcopy(H5T_IEEE_F32LE), "copy f32");
    case torch::kFloat64:
      return h5_check(H5Tcopy(H5T_IEEE_F64LE), "copy f64");
    case torch::kInt64:
      return h5_check(H5Tcopy(H5T_STD_I64LE), "copy i64");
    case torch::kInt32:
      return h5_check(H5Tcopy(H5T_STD_I32LE), "copy i32");
    case torch::kUInt8:
    case torch::kBool:
      return h5_check(H5Tcopy(H5T_STD_U8LE), "copy u8");
    case torch::kFloat16:
    case torch::kBFloat16: {
      // HDF5 1.10 has no predefined 16-bit floats: derive them from F32LE.
      H5Id ty = h5_check(H5Tcopy(H5T_IEEE_F32LE), "copy f32");
      const bool half = t == torch::kFloat16;
      const size_t mant = half ? 10 : 7, expo = half ? 5 : 8;
      h5_check_status(H5Tset_fields(ty.get(), 15, mant, expo, 0, mant), "set fields");
      h5_check_status(H5Tset_size(ty.get(), 2), "set size");
      h5_check_status(H5Tset_ebias(ty.get(), half ? 15 : 127), "set ebias");
      return ty;
    }
    default:
      throw std::runtime_error(std::string("no HDF5 type for ") + c10::toString(t));
  }
}

H5Id h5_compact_storage(hid_t kind) {
  H5Id p = h5_check(H5Pcreate(kind), "creation properties");
  // 65535: the most either setting allows (HDF5's creation-order index limit).
  h5_check_status(H5Pset_link_phase_change(p.get(), 65535, 0), "compact links");
  h5_check_status(H5Pset_attr_phase_change(p.get(), 65535, 0), "compact attributes");
  return p;
}

void h5_create_groups(hid_t file, const std::string& path) {
  const H5Id gcpl = h5_compact_storage(H5P_GROUP_CREATE);
  for (size_t at = path.find('/', 1);; at = path.find('/', at + 1)) {
    const std::string prefix = path.substr(0, at);
    if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) {
      h5_check(H5Gcreate2(file, prefix.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT),
               "create group " + prefix);
    }
    if (at == std::string::npos) return;
  }
}

H5Id h5_variable_string_type() {
  H5Id t = h5_check(H5Tcopy(H5T_C_S1), "string type");
  h5_check_status(H5Tset_size(t.get(), H5T_VARIABLE), "string type");
  h5_check_status(H5Tset_cset(t.get(), H5T_CSET_UTF8), "string type");
  return t;
}

void h5_write_string_attr(hid_t obj, const std::string& name, const std::string& value) {
  // Fixed length, not variable: a variable-length string lives in the global heap, which has no
  // checksum, and libhdf5 1.10 crashes reading one whose heap byte was flipped. A fixed-length
  // value lives in the (checksummed) object header, so a damaged file gives an error instead.
  H5Id ty = h5_check(H5Tcopy(H5T_C_S1), "string type");
  h5_check_status(H5Tset_size(ty.get(), std::max<size_t>(value.size(), 1)), "string size");
  h5_check_status(H5Tset_strpad(ty.get(), H5T_STR_NULLPAD), "string padding");
  h5_check_status(H5Tset_cset(ty.get(), H5T_CSET_UTF8), "string cset");
  H5Id space = h5_check(H5Screate(H5S_SCALAR), "scalar space");
  if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
  H5Id attr =
      h5_check(H5Acreate2(obj, name.c_str(), ty.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
               "create attribute " + name);
  std::string padded = value;
  padded.resize(std::max<size_t>(value.size(), 1), '\0');
  h5_check_status(H5Awrite(attr.get(), ty.get(), padded.data()), "write attribute " + name);
}

namespace {
// No attribute we write comes near this (the largest, a scenario's TOML text, is a few KB).
constexpr size_t kMaxAttrBytes = size_t(64) << 20;
}  // namespace

std::string h5_read_string_attr(hid_t obj, const std::string& name) {
  H5Id attr = h5_check(H5Aopen(obj, name.c_str(), H5P_DEFAULT), "open attribute " + name);
  H5Id ty = h5_check(H5Aget_type(attr.get()), "attribute type " + name);
  // H5Aread writes one value per element of the attribute's dataspace: a damaged one (dense
  // attributes live in a fractal heap without checksums) must not overrun the one we hold.
  H5Id space = h5_check(H5Aget_space(attr.get()), "attribute space " + name);
  if (H5Tget_class(ty.get()) != H5T_STRING || H5Sget_simple_extent_npoints(space.get()) != 1)
    throw std::runtime_error("attribute " + name + " is not one string (a damaged file?)");
  if (H5Tis_variable_str(ty.get()) > 0) {
    const H5Id mem = h5_variable_string_type();
    char* p = nullptr;
    h5_check_status(H5Aread(attr.get(), mem.get(), &p), "read attribute " + name);
    std::string s = p ? p : "";
    H5free_memory(p);
    return s;
  }
  const size_t n = H5Tget_size(ty.get());
  if (n == 0 || n > kMaxAttrBytes)
    throw std::runtime_error("attribute " + name + " claims " + std::to_string(n) + " bytes");
  std::string s(n, '\0');
  h5_check_status(H5Aread(attr.get(), ty.get(), s.data()), "read attribute " + name);
  return s.substr(0, s.find('\0'));
}

bool h5_has_attr(hid_t obj, const std::string& name) { return H5Aexists(obj, name.c_str()) > 0; }

void h5_write_i64_array_attr(hid_t obj, const std::string& name, const std::vector<int64_t>& v) {
  hsize_t n = v.size();
  H5Id space = n ? h5_check(H5Screate_simple(1, &n, nullptr), "space")
                 : h5_check(H5Screate(H5S_NULL), "null space");
  H5Id attr =
      h5_check(H5Acreate2(obj, name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
               "create attribute " + name);
  if (n)
    h5_check_status(H5Awrite(attr.get(), H5T_NATIVE_INT64, v.data()), "write attribute " + name);
}

void h5_write_i64_attr(hid_t obj, const std::string& name, int64_t v) {
  H5Id space = h5_check(H5Screate(H5S_SCALAR), "scalar space");
  H5Id attr =
      h5_check(H5Acreate2(obj, name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
               "create attribute " + name);
  h5_check_status(H5Awrite(attr.get(), H5T_NATIVE_INT64, &v), "write attribute " + name);
}

std::vector<int64_t> h5_read_i64_array_attr(hid_t obj, const std::string& name) {
  H5Id attr = h5_check(H5Aopen(obj, name.c_str(), H5P_DEFAULT), "open attribute " + name);
  H5Id space = h5_check(H5Aget_space(attr.get()), "attribute space");
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0 || size_t(n) > kMaxAttrBytes / sizeof(int64_t))
    throw std::runtime_error("attribute " + name + " claims " + std::to_string(n) + " values");
  std::vector<int64_t> v(static_cast<size_t>(n));
  if (!v.empty())
    h5_check_status(H5Aread(attr.get(), H5T_NATIVE_INT64, v.data()), "read attribute " + name);
  return v;
}

}  // namespace cliprepro
