#include "src/model/checkpoint.h"

#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/read_adapter_interface.h>
#include <torch/csrc/jit/serialization/unpickler.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "src/model/pickle_bounds.h"
#include "src/safe_file.h"

namespace cliprepro {
namespace {

std::vector<char> read_file(const std::string& path) {
  return read_regular_file_bytes(path, "checkpoint");  // not a FIFO, directory or device
}

const std::vector<std::pair<std::string, torch::ScalarType>>& safetensors_dtypes() {
  static const std::vector<std::pair<std::string, torch::ScalarType>> kTable = {
      {"F64", torch::kFloat64},   {"F32", torch::kFloat32}, {"F16", torch::kFloat16},
      {"BF16", torch::kBFloat16}, {"I64", torch::kInt64},   {"I32", torch::kInt32},
      {"I16", torch::kInt16},     {"I8", torch::kInt8},     {"U8", torch::kUInt8},
      {"BOOL", torch::kBool}};
  return kTable;
}

torch::ScalarType dtype_from_safetensors(const std::string& s, const std::string& where) {
  for (const auto& [name, t] : safetensors_dtypes())
    if (name == s) return t;
  throw std::runtime_error(where + ": unsupported safetensors dtype '" + s + "'");
}

std::string dtype_to_safetensors(torch::ScalarType t, const std::string& key) {
  for (const auto& [name, d] : safetensors_dtypes())
    if (d == t) return name;
  throw std::runtime_error("tensor '" + key + "': dtype " + std::string(c10::toString(t)) +
                           " has no safetensors name");
}

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream o;
  o << s;
  return o.str();
}

// safetensors starts with its header length: a little-endian u64 (caller checks size >= 8).
uint64_t safetensors_header_length(const std::vector<char>& b) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | uint8_t(b[i]);
  return n;
}

// ... followed by a JSON object.
bool looks_like_safetensors(const std::vector<char>& b) {
  return b.size() >= 9 && safetensors_header_length(b) <= b.size() - 8 && b[8] == '{';
}

bool is_zip(const std::vector<char>& b) {
  return b.size() >= 4 && std::memcmp(b.data(), "PK\x03\x04", 4) == 0;
}

// A zip's storage record may be shorter than the storage the pickle declares, or than the tensor
// viewing it: the storage must not claim more bytes than its record holds (LibTorch sizes it by
// the pickle's count over the record's smaller allocation), and every element must lie inside.
void check_within_storage(const torch::Tensor& t, const std::map<const void*, size_t>& records,
                          const std::string& where) {
  if (t.has_storage() && !t.is_sparse()) {
    const auto r = records.find(t.storage().data());
    if (r != records.end() && t.storage().nbytes() > r->second) {
      throw std::runtime_error(where + ": its storage record holds " + std::to_string(r->second) +
                               " bytes, the pickle declares a storage of " +
                               std::to_string(t.storage().nbytes()));
    }
  }
  if (t.numel() == 0) return;
  if (!t.has_storage() || t.is_sparse()) throw std::runtime_error(where + ": not a dense tensor");
  const auto record = records.find(t.storage().data());
  if (record == records.end())
    throw std::runtime_error(where + ": its storage is no record of the file");
  const size_t held = std::min(record->second, t.storage().nbytes());
  if (t.storage_offset() < 0) throw std::runtime_error(where + ": negative storage offset");
  // Flat index of the last element + 1, in elements, overflow-checked.
  uint64_t extent = uint64_t(t.storage_offset()), need = 0;
  for (int64_t d = 0; d < t.dim(); ++d) {
    uint64_t span = 0;
    if (t.stride(d) < 0 ||
        __builtin_mul_overflow(uint64_t(t.size(d) - 1), uint64_t(t.stride(d)), &span) ||
        __builtin_add_overflow(extent, span, &extent))
      throw std::runtime_error(where + ": strides reach outside any storage");
  }
  if (__builtin_add_overflow(extent, uint64_t(1), &extent) ||
      __builtin_mul_overflow(extent, uint64_t(t.element_size()), &need) || need > held) {
    throw std::runtime_error(where + ": its storage record holds " + std::to_string(held) +
                             " bytes, the tensor " + shape_str(t.sizes()) + " needs " +
                             std::to_string(need));
  }
}

// torch::pickle_load, with each storage record's size kept: the unpickler sizes a storage by the
// element count the pickle claims, not by its record, so a short record would be read past its
// end (PyTorch's own loader compares the two; LibTorch's does not). `records`: the address of
// every record read -> its size in bytes.
// LibTorch's MemoryReadAdapter copies whatever range miniz asks for: a zip whose end record
// claims a central directory past the end of the file made it read past the buffer (found by
// fuzz_torch_zip). This one reads only what is there; miniz then reports a short read.
class BoundedReadAdapter final : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit BoundedReadAdapter(const std::vector<char>& bytes) : bytes_(bytes) {}
  size_t size() const override { return bytes_.size(); }
  size_t read(uint64_t pos, void* buf, size_t n, const char* /*what*/) const override {
    if (pos >= bytes_.size() || n == 0) return 0;  // n == 0: miniz may pass a null buffer
    n = std::min<uint64_t>(n, bytes_.size() - pos);
    std::memcpy(buf, bytes_.data() + pos, n);
    return n;
  }

 private:
  const std::vector<char>& bytes_;
};

c10::IValue unpickle_zip(const std::vector<char>& bytes, const std::string& path,
                         std::map<const void*, size_t>& records) {
  caffe2::serialize::PyTorchStreamReader zip(std::make_shared<BoundedReadAdapter>(bytes));
  // Not a structured binding: clang 14 (the sanitize preset) cannot capture one in a lambda.
  const auto pickle_record = zip.getRecord("data.pkl");
  const at::DataPtr& pickle = std::get<0>(pickle_record);
  const size_t pickle_size = std::get<1>(pickle_record);
  check_pickle_lengths(static_cast<const char*>(pickle.get()), pickle_size,
                       "'" + path + "': data.pkl");
  size_t consumed = 0;
  auto read = [&](char* out, size_t n) {
    n = std::min(n, pickle_size - consumed);
    if (n == 0) return n;  // an empty record's pointer is null: no memcpy from it, even of 0 bytes
    std::memcpy(out, static_cast<const char*>(pickle.get()) + consumed, n);
    consumed += n;
    return n;
  };
  auto read_record = [&](const std::string& name) {
    auto [data, size] = zip.getRecord("data/" + name);
    records[data.get()] = size;
    return std::move(data);
  };
  torch::jit::Unpickler unpickler(read, nullptr, nullptr, read_record, std::nullopt);
  unpickler.set_version(zip.version());
  return unpickler.parse_ivalue();
}

StateDict state_dict_from_ivalue(const c10::IValue& root, const std::string& path,
                                 const std::map<const void*, size_t>& records) {
  if (!root.isGenericDict()) {
    throw std::runtime_error("'" + path + "': the pickled object is not a dict (state dict)");
  }
  auto dict = root.toGenericDict();
  for (const auto& entry : dict) {
    if (entry.key().isString() && entry.key().toStringRef() == "state_dict") {
      return state_dict_from_ivalue(entry.value(), path + ":state_dict", records);
    }
  }
  StateDict sd;
  for (const auto& entry : dict) {
    if (!entry.key().isString() || !entry.value().isTensor()) {
      throw std::runtime_error("'" + path + "': entry " +
                               (entry.key().isString() ? "'" + entry.key().toStringRef() + "'"
                                                       : std::string("with a non-string key")) +
                               " is not a tensor, and there is no 'state_dict' key");
    }
    const auto& t = entry.value().toTensor();
    check_within_storage(t, records, "'" + path + "' tensor '" + entry.key().toStringRef() + "'");
    sd.emplace_back(entry.key().toStringRef(), t);
  }
  return sd;
}

}  // namespace

StateDict model_state_dict(const torch::nn::Module& model) {
  StateDict sd;
  for (const auto& p : model.named_parameters(/*recurse=*/true))
    sd.emplace_back(p.key(), p.value());
  for (const auto& b : model.named_buffers(/*recurse=*/true)) sd.emplace_back(b.key(), b.value());
  return sd;
}

namespace {

StateDict parse_safetensors(const std::vector<char>& bytes, const std::string& path,
                            std::map<std::string, std::string>* metadata) {
  if (bytes.size() < 8) throw std::runtime_error("'" + path + "': too short for safetensors");
  const uint64_t header_len = safetensors_header_length(bytes);
  if (header_len > bytes.size() - 8) {
    throw std::runtime_error("'" + path + "': safetensors header length " +
                             std::to_string(header_len) + " exceeds the file");
  }
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + long(header_len));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("'" + path + "': bad safetensors header: " + e.what());
  }
  const char* data = bytes.data() + 8 + header_len;
  const uint64_t data_len = bytes.size() - 8 - header_len;
  if (!header.is_object())
    throw std::runtime_error("'" + path + "': safetensors header is not an object");
  // As the reference implementation: each tensor's bytes lie inside the data section, and
  // together they tile it without overlap or gaps. Sizes are checked before anything is
  // allocated; nothing outside the data section is ever read.
  StateDict sd;
  std::vector<std::pair<uint64_t, uint64_t>> spans;  // [begin, end) of each tensor
  for (const auto& [key, info] : header.items()) {
    if (key == "__metadata__") {
      if (!info.is_object())
        throw std::runtime_error("'" + path + "': __metadata__ is not an object");
      for (const auto& [k, v] : info.items()) {
        if (!v.is_string())
          throw std::runtime_error("'" + path + "': __metadata__ entry '" + k +
                                   "' is not a string");
        if (metadata != nullptr) (*metadata)[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string where = "'" + path + "' tensor '" + key + "'";
    auto bad = [&](const std::string& what) { return std::runtime_error(where + ": " + what); };
    if (!info.is_object() || !info.contains("dtype") || !info["dtype"].is_string() ||
        !info.contains("shape") || !info["shape"].is_array() || !info.contains("data_offsets") ||
        !info["data_offsets"].is_array()) {
      throw bad("needs string 'dtype', array 'shape' and array 'data_offsets'");
    }
    const auto dtype = dtype_from_safetensors(info["dtype"].get<std::string>(), where);
    std::vector<int64_t> shape;
    uint64_t nbytes = torch::elementSize(dtype);
    for (const auto& d : info["shape"]) {
      if (!d.is_number_unsigned()) throw bad("shape entries must be integers >= 0");
      const uint64_t n = d.get<uint64_t>();
      if (n > uint64_t(INT64_MAX) || __builtin_mul_overflow(nbytes, n, &nbytes))
        throw bad("shape overflows");
      shape.push_back(int64_t(n));
    }
    const auto& off = info["data_offsets"];
    if (off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw bad("data_offsets must be two integers >= 0");
    const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    if (begin > end || end > data_len || end - begin != nbytes) {
      throw bad("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                ") do not hold its " + std::to_string(nbytes) + " bytes inside the " +
                std::to_string(data_len) + "-byte data section");
    }
    spans.emplace_back(begin, end);
    auto t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
    if (nbytes > 0) std::memcpy(t.data_ptr(), data + begin, nbytes);
    sd.emplace_back(key, std::move(t));
  }
  std::sort(spans.begin(), spans.end());
  uint64_t covered = 0;
  for (const auto& [begin, end] : spans) {
    if (begin != covered) {
      throw std::runtime_error("'" + path + "': tensor data " +
                               std::string(begin < covered ? "overlaps" : "leaves a gap") +
                               " at byte " + std::to_string(std::min(begin, covered)) +
                               " of the data section");
    }
    covered = end;
  }
  if (covered != data_len) {
    throw std::runtime_error("'" + path + "': " + std::to_string(data_len - covered) +
                             " bytes after the last tensor's data");
  }
  return sd;
}

}  // namespace

StateDict read_safetensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  return parse_safetensors(read_file(path), path, metadata);
}

void write_safetensors(const std::string& path, const StateDict& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header;
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> payload;
  uint64_t offset = 0;
  for (const auto& [key, t] : tensors) {
    auto c = t.detach().to(torch::kCPU).contiguous();
    header[key] = {{"dtype", dtype_to_safetensors(c.scalar_type(), key)},
                   {"shape", c.sizes().vec()},
                   {"data_offsets", {offset, offset + c.nbytes()}}};
    offset += c.nbytes();
    payload.push_back(std::move(c));
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // align the data section, as the reference writer does
  AtomicFile out(path, "checkpoint");     // never half a file, nor a leftover temporary on ENOSPC
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = char((uint64_t(h.size()) >> (8 * i)) & 0xff);
  out.write(len, 8);
  out.write(h);
  for (const auto& c : payload) out.write(c.data_ptr(), c.nbytes());
  out.commit();
}

StateDict read_checkpoint(const std::string& path) {
  return read_checkpoint_bytes(read_file(path), path);
}

StateDict read_checkpoint_bytes(const std::vector<char>& bytes, const std::string& path) {
  StateDict sd;
  {
    if (is_zip(bytes)) {
      std::map<const void*, size_t> records;
      c10::IValue root;
      try {
        root = unpickle_zip(bytes, path, records);
      } catch (const c10::Error& e) {
        throw std::runtime_error(
            "'" + path + "': cannot unpickle torch zip checkpoint: " + e.what_without_backtrace());
      }
      sd = state_dict_from_ivalue(root, path, records);
    } else if (looks_like_safetensors(bytes)) {
      sd = parse_safetensors(bytes, path, nullptr);
    } else if (bytes.size() >= 2 && uint8_t(bytes[0]) == 0x80) {  // pickle protocol marker
      throw std::runtime_error("'" + path +
                               "': legacy (non-zip) torch.save format; re-save it with "
                               "torch.save(obj, f) from torch >= 1.6");
    } else {
      sd = parse_safetensors(bytes, path, nullptr);  // reports what is wrong with the header
    }
  }
  if (!sd.empty() && sd.front().first.rfind("module.", 0) == 0) {
    for (auto& [k, t] : sd)
      if (k.rfind("module.", 0) == 0) k = k.substr(7);
  }
  return sd;
}

std::string LoadReport::describe() const {
  std::ostringstream o;
  auto list = [&](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    o << v.size() << " " << what << ":";
    for (const auto& k : v) o << "\n  " << k;
    o << "\n";
  };
  list("missing keys (in the model, not in the checkpoint)", missing);
  list("unexpected keys (in the checkpoint, not in the model)", unexpected);
  list("shape or dtype mismatches", mismatched);
  return o.str();
}

LoadReport load_state_dict(torch::nn::Module& model, const StateDict& checkpoint, bool strict) {
  std::unordered_map<std::string, const torch::Tensor*> given;
  for (const auto& [k, t] : checkpoint) given[k] = &t;
  LoadReport report;
  std::set<std::string> seen;
  torch::NoGradGuard no_grad;
  for (auto& [key, dst] : model_state_dict(model)) {
    seen.insert(key);
    auto it = given.find(key);
    if (it == given.end()) {
      // PyTorch's BatchNorm fills num_batches_tracked for checkpoints that predate it.
      if (!key.ends_with(".num_batches_tracked")) report.missing.push_back(key);
      continue;
    }
    const auto& src = *it->second;
    if (src.sizes() != dst.sizes()) {
      report.mismatched.push_back(key + ": checkpoint " + shape_str(src.sizes()) + " vs model " +
                                  shape_str(dst.sizes()));
      continue;
    }
    if (src.scalar_type() != dst.scalar_type()) {  // no silent conversion of stored bits
      report.mismatched.push_back(key + ": checkpoint dtype " +
                                  std::string(c10::toString(src.scalar_type())) + " vs model " +
                                  std::string(c10::toString(dst.scalar_type())));
      continue;
    }
    dst.copy_(src);
  }
  for (const auto& [k, t] : checkpoint)
    if (!seen.count(k)) report.unexpected.push_back(k);
  if ((strict && !report.clean()) || !report.mismatched.empty()) {
    throw std::runtime_error("checkpoint does not fit the model:\n" + report.describe());
  }
  return report;
}

}  // namespace cliprepro
