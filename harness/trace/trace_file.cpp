#include "harness/trace/trace_file.h"

#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "harness/log/h5_types.h"
#include "src/safe_file.h"

namespace cliprepro {
namespace {

void write_strings(hid_t group, const char* name, const std::vector<std::string>& v) {
  const H5Id type = h5_variable_string_type();
  const hsize_t n = v.size();
  const H5Id space = h5_check(H5Screate_simple(1, &n, nullptr), name);
  const H5Id ds = h5_check(
      H5Dcreate2(group, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
      name);
  std::vector<const char*> ptrs;
  for (const auto& s : v) ptrs.push_back(s.c_str());
  if (n > 0)
    h5_check_status(H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()),
                    name);
}

void write_i64(hid_t group, const char* name, const std::vector<int64_t>& v) {
  const hsize_t n = v.size();
  const H5Id space = h5_check(H5Screate_simple(1, &n, nullptr), name);
  const H5Id ds = h5_check(
      H5Dcreate2(group, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
      name);
  if (n > 0)
    h5_check_status(H5Dwrite(ds.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()),
                    name);
}

hsize_t length_of(hid_t ds, const std::string& what) {
  const H5Id space = h5_check(H5Dget_space(ds), what);
  if (H5Sget_simple_extent_ndims(space.get()) != 1) throw std::runtime_error(what + " is not 1-D");
  return hsize_t(H5Sget_simple_extent_npoints(space.get()));
}

std::vector<std::string> read_strings(hid_t group, const std::string& name) {
  const H5Id ds = h5_check(H5Dopen2(group, name.c_str(), H5P_DEFAULT), name);
  const hsize_t n = length_of(ds.get(), name);
  const H5Id type = h5_variable_string_type();
  const H5Id stored = h5_check(H5Dget_type(ds.get()), name);
  if (H5Tget_class(stored.get()) != H5T_STRING || H5Tis_variable_str(stored.get()) <= 0)
    throw std::runtime_error(name + " is not a string column");
  std::vector<char*> buf(n, nullptr);
  if (n > 0) {
    h5_check_status(H5Dread(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), name);
  }
  std::vector<std::string> out;
  for (char* p : buf) out.emplace_back(p ? p : "");
  if (n > 0) {
    const H5Id space = h5_check(H5Dget_space(ds.get()), name);
    H5Dvlen_reclaim(type.get(), space.get(), H5P_DEFAULT, buf.data());
  }
  return out;
}

std::vector<int64_t> read_i64(hid_t group, const std::string& name) {
  const H5Id ds = h5_check(H5Dopen2(group, name.c_str(), H5P_DEFAULT), name);
  std::vector<int64_t> v(length_of(ds.get(), name));
  if (!v.empty())
    h5_check_status(H5Dread(ds.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()),
                    name);
  return v;
}

std::string values_json(const std::vector<TracedValue>& values) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& v : values) {
    if (!v.has_digest) {
      a.push_back({v.desc});
      continue;
    }
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016" PRIx64, v.digest);
    a.push_back({v.desc, hex});
  }
  return a.dump();
}

std::vector<TracedValue> values_from_json(const std::string& text, const std::string& what) {
  const auto a = nlohmann::json::parse(text, nullptr, false);
  if (!a.is_array()) throw std::runtime_error(what + ": not a JSON array: " + text);
  std::vector<TracedValue> out;
  for (const auto& e : a) {
    if (!e.is_array() || e.empty() || e.size() > 2 || !e[0].is_string())
      throw std::runtime_error(what + ": bad value " + e.dump());
    TracedValue v;
    v.desc = e[0].get<std::string>();
    if (e.size() == 2) {
      const std::string hex = e[1].is_string() ? e[1].get<std::string>() : "";
      char* end = nullptr;
      v.digest = std::strtoull(hex.c_str(), &end, 16);
      if (hex.size() != 16 || end != hex.c_str() + 16)
        throw std::runtime_error(what + ": bad digest " + e[1].dump());
      v.has_digest = true;
    }
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace

void write_trace(const std::filesystem::path& path, const Trace& trace) {
  h5_quiet();
  require_output_target(path, "trace");  // renamed over it: never over a link or device
  const std::string tmp = path.string() + ".tmp-" + std::to_string(getpid());
  try {
    {
      const H5Id fcpl = h5_compact_storage(H5P_FILE_CREATE);
      H5Id file =
          h5_check(H5Fcreate(tmp.c_str(), H5F_ACC_EXCL, fcpl.get(), H5P_DEFAULT), "create " + tmp);
      h5_write_string_attr(file.get(), "format", kTraceFormat);
      h5_write_string_attr(file.get(), "format_version", std::to_string(kTraceFormatVersion));
      for (const auto& [k, v] : trace.attrs) h5_write_string_attr(file.get(), k, v);
      for (const auto& st : trace.steps) {
        const std::string g = "/steps/" + std::to_string(st.step);
        h5_create_groups(file.get(), g);
        const H5Id group = h5_check(H5Gopen2(file.get(), g.c_str(), H5P_DEFAULT), g);
        std::vector<std::string> name, phase, module, inputs, outputs;
        std::vector<int64_t> depth, parent, end_order;
        for (const auto& op : st.ops) {
          name.push_back(op.name);
          phase.push_back(op.phase);
          module.push_back(op.module);
          inputs.push_back(values_json(op.inputs));
          outputs.push_back(values_json(op.outputs));
          depth.push_back(op.depth);
          parent.push_back(op.parent);
          end_order.push_back(op.end_order);
        }
        write_strings(group.get(), "name", name);
        write_strings(group.get(), "phase", phase);
        write_strings(group.get(), "module", module);
        write_strings(group.get(), "inputs", inputs);
        write_strings(group.get(), "outputs", outputs);
        write_i64(group.get(), "depth", depth);
        write_i64(group.get(), "parent", parent);
        write_i64(group.get(), "end_order", end_order);
      }
      h5_check_status(file.close(), "close " + tmp);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
      throw std::runtime_error("cannot move " + tmp + " to " + path.string());
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
}

Trace read_trace(const std::filesystem::path& path) {
  h5_quiet();
  if (!std::filesystem::is_regular_file(path))
    throw std::runtime_error(path.string() + ": no such trace file");
  const H5Id file = h5_check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT),
                             path.string() + ": not an HDF5 file");
  if (!h5_has_attr(file.get(), "format") ||
      h5_read_string_attr(file.get(), "format") != kTraceFormat) {
    throw std::runtime_error(path.string() +
                             ": not a cliprepro trace (write one with: cliprepro trace record)");
  }
  Trace t;
  for (const auto& a : h5_attr_names(file.get(), path.string()))
    t.attrs[a] = h5_read_string_attr(file.get(), a);
  if (H5Lexists(file.get(), "/steps", H5P_DEFAULT) <= 0) return t;
  const H5Id steps = h5_check(H5Gopen2(file.get(), "/steps", H5P_DEFAULT), "/steps");
  std::vector<int64_t> numbers;
  for (const auto& n : h5_object_names(steps.get(), H5O_TYPE_GROUP, path.string())) {
    if (n == "." || n.find('/') != std::string::npos) continue;  // itself; none nested
    try {
      numbers.push_back(std::stoll(n));
    } catch (const std::exception&) {
      throw std::runtime_error(path.string() + ": /steps/" + n + " is not a step number");
    }
  }
  std::sort(numbers.begin(), numbers.end());
  for (const int64_t s : numbers) {
    const std::string g = std::to_string(s);
    const std::string what = path.string() + ": /steps/" + g;
    const H5Id group = h5_check(H5Gopen2(steps.get(), g.c_str(), H5P_DEFAULT), what);
    const auto name = read_strings(group.get(), "name"), phase = read_strings(group.get(), "phase"),
               module = read_strings(group.get(), "module"),
               inputs = read_strings(group.get(), "inputs"),
               outputs = read_strings(group.get(), "outputs");
    const auto depth = read_i64(group.get(), "depth"), parent = read_i64(group.get(), "parent"),
               end_order = read_i64(group.get(), "end_order");
    const size_t n = name.size();
    for (size_t len : {phase.size(), module.size(), inputs.size(), outputs.size(), depth.size(),
                       parent.size(), end_order.size()}) {
      if (len != n) throw std::runtime_error(what + ": columns of different lengths");
    }
    TraceStep st;
    st.step = s;
    for (size_t i = 0; i < n; ++i) {
      TracedOp op;
      op.name = name[i];
      op.phase = phase[i];
      op.module = module[i];
      op.depth = int32_t(depth[i]);
      op.parent = parent[i];
      op.end_order = end_order[i];
      const std::string row = what + " op " + std::to_string(i);
      op.inputs = values_from_json(inputs[i], row);
      op.outputs = values_from_json(outputs[i], row);
      st.ops.push_back(std::move(op));
    }
    t.steps.push_back(std::move(st));
  }
  return t;
}

}  // namespace cliprepro
