#include "harness/log/log_format.h"

#include <cstddef>

namespace cliprepro {
namespace {

H5Id stats_array_type(hid_t base) {
  const hsize_t n = kStatColumns.size();
  return h5_check(H5Tarray_create2(base, 1, &n), "stats array type");
}

}  // namespace

H5Id digest_row_file_type(bool stats) {
  const size_t size = 8 + 4 + 4 + 8 + (stats ? sizeof(StatRow) : 0);
  H5Id t = h5_check(H5Tcreate(H5T_COMPOUND, size), "digest row type");
  h5_check_status(H5Tinsert(t.get(), "step", 0, H5T_STD_I64LE), "step member");
  h5_check_status(H5Tinsert(t.get(), "series", 8, H5T_STD_I32LE), "series member");
  h5_check_status(H5Tinsert(t.get(), "order", 12, H5T_STD_I32LE), "order member");
  h5_check_status(H5Tinsert(t.get(), "digest", 16, H5T_STD_U64LE), "digest member");
  if (stats) {
    H5Id a = stats_array_type(H5T_IEEE_F64LE);
    h5_check_status(H5Tinsert(t.get(), "stats", 24, a.get()), "stats member");
  }
  return t;
}

H5Id digest_row_mem_type(bool stats) {
  H5Id t = h5_check(H5Tcreate(H5T_COMPOUND, sizeof(DigestRow)), "digest row type");
  h5_check_status(H5Tinsert(t.get(), "step", offsetof(DigestRow, step), H5T_NATIVE_INT64), "step");
  h5_check_status(H5Tinsert(t.get(), "series", offsetof(DigestRow, series), H5T_NATIVE_INT32),
                  "series");
  h5_check_status(H5Tinsert(t.get(), "order", offsetof(DigestRow, order), H5T_NATIVE_INT32),
                  "order");
  h5_check_status(H5Tinsert(t.get(), "digest", offsetof(DigestRow, digest), H5T_NATIVE_UINT64),
                  "digest");
  if (stats) {
    H5Id a = stats_array_type(H5T_NATIVE_DOUBLE);
    h5_check_status(H5Tinsert(t.get(), "stats", offsetof(DigestRow, stats), a.get()), "stats");
  }
  return t;
}

}  // namespace cliprepro
