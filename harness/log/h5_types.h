// HDF5 handles and the mapping between torch dtypes and HDF5 types. fp16 is an IEEE half
// type (h5py reads <f2); bf16 is a 16-bit float type (sign 15, exponent 7..14, mantissa 0..6,
// bias 127) that keeps its exact bits, tagged with a "dtype" attribute.
#pragma once
#include <hdf5.h>
#include <torch/types.h>

#include <exception>
#include <string>
#include <utility>
#include <vector>

namespace cliprepro {

// Owns one HDF5 identifier and closes it with the right H5*close.
class H5Id {
 public:
  H5Id() = default;
  explicit H5Id(hid_t id) : id_(id) {}
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  H5Id(H5Id&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)) {}
  H5Id& operator=(H5Id&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
    }
    return *this;
  }
  ~H5Id() { reset(); }
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset() { (void)close(); }
  // Closes now and says whether HDF5 could (closing a file flushes it: that can fail).
  herr_t close();

 private:
  hid_t id_ = H5I_INVALID_HID;
};

// Throws std::runtime_error(what) when `id` is negative; otherwise wraps it.
H5Id h5_check(hid_t id, const std::string& what);
void h5_check_status(herr_t status, const std::string& what);

// dtype name used in logs: "float32", "float16", "bfloat16", "float64", "int64", "uint8", ...
std::string dtype_name(torch::ScalarType t);
torch::ScalarType dtype_from_name(const std::string& name);
// A new HDF5 type for the torch dtype (caller owns it).
H5Id h5_type_for(torch::ScalarType t);

// Names (relative to `root`) of every object of `type` below `root`, and of an object's
// attributes, in name order. The work is done after HDF5's iteration has returned, so that an
// error in it does not unwind through HDF5's C frames (that would leave libhdf5's global lock
// held and the file open inside it: log_reader.cpp).
std::vector<std::string> h5_object_names(hid_t root, H5O_type_t type, const std::string& what);
std::vector<std::string> h5_attr_names(hid_t obj, const std::string& what);

// A variable-length UTF-8 string type (caller owns it): what h5py writes for str.
H5Id h5_variable_string_type();

// Attribute helpers on any object.
void h5_write_string_attr(hid_t obj, const std::string& name, const std::string& value);

// Creation properties (`kind`: H5P_FILE_CREATE for the root group, or H5P_GROUP_CREATE) that
// keep links and attributes in the object's header however many there are ("compact"
// storage). Object headers are checksummed; past 8 links or attributes HDF5 otherwise moves
// them to a fractal heap whose blocks are not, and libhdf5 1.10.8 frees garbage pointers when it
// iterates a damaged one (a crash, not an error: Corruption.FlippedBytesInALogNeverCrashAReader).
H5Id h5_compact_storage(hid_t kind);
// Creates the groups of `path` ("/a/b/c") that do not exist yet, each with h5_compact_storage
// (H5Pset_create_intermediate_group would give the intermediate ones the default storage).
void h5_create_groups(hid_t file, const std::string& path);
std::string h5_read_string_attr(hid_t obj, const std::string& name);
bool h5_has_attr(hid_t obj, const std::string& name);
void h5_write_i64_array_attr(hid_t obj, const std::string& name, const std::vector<int64_t>& v);
// A scalar int64 attribute (h5_read_i64_array_attr reads it as one element).
void h5_write_i64_attr(hid_t obj, const std::string& name, int64_t v);
std::vector<int64_t> h5_read_i64_array_attr(hid_t obj, const std::string& name);

// Silences HDF5's own error stack printing; errors are reported by our exceptions.
void h5_quiet();

}  // namespace cliprepro
