#include "src/model/checkpoint.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

namespace cliprepro {
namespace {

std::vector<char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open checkpoint '" + path + "'");
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
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

StateDict state_dict_from_ivalue(const c10::IValue& root, const std::string& path) {
  if (!root.isGenericDict()) {
    throw std::runtime_error("'" + path + "': the pickled object is not a dict (state dict)");
  }
  auto dict = root.toGenericDict();
  for (const auto& entry : dict) {
    if (entry.key().isString() && entry.key().toStringRef() == "state_dict") {
      return state_dict_from_ivalue(entry.value(), path + ":state_dict");
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
    sd.emplace_back(entry.key().toStringRef(), entry.value().toTensor());
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
  StateDict sd;
  for (const auto& [key, info] : header.items()) {
    if (key == "__metadata__") {
      if (metadata != nullptr)
        for (const auto& [k, v] : info.items()) (*metadata)[k] = v.get<std::string>();
      continue;
    }
    const std::string where = "'" + path + "' tensor '" + key + "'";
    const auto dtype = dtype_from_safetensors(info.at("dtype").get<std::string>(), where);
    const auto shape = info.at("shape").get<std::vector<int64_t>>();
    const auto offsets = info.at("data_offsets").get<std::vector<uint64_t>>();
    auto t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
    const uint64_t nbytes = t.nbytes();
    if (offsets.size() != 2 || offsets[1] > data_len || offsets[1] - offsets[0] != nbytes) {
      throw std::runtime_error(where + ": data_offsets do not match its shape and dtype");
    }
    std::memcpy(t.data_ptr(), data + offsets[0], nbytes);
    sd.emplace_back(key, std::move(t));
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
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write '" + tmp + "'");
    char len[8];
    for (int i = 0; i < 8; ++i) len[i] = char((uint64_t(h.size()) >> (8 * i)) & 0xff);
    out.write(len, 8);
    out.write(h.data(), std::streamsize(h.size()));
    for (const auto& c : payload)
      out.write(static_cast<const char*>(c.data_ptr()), std::streamsize(c.nbytes()));
    if (!out.flush()) throw std::runtime_error("write failed: '" + tmp + "'");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot rename '" + tmp + "' to '" + path + "'");
  }
}

StateDict read_checkpoint(const std::string& path) {
  StateDict sd;
  {
    auto bytes = read_file(path);
    if (is_zip(bytes)) {
      c10::IValue root;
      try {
        root = torch::pickle_load(bytes);
      } catch (const c10::Error& e) {
        throw std::runtime_error(
            "'" + path + "': cannot unpickle torch zip checkpoint: " + e.what_without_backtrace());
      }
      sd = state_dict_from_ivalue(root, path);
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
  list("shape mismatches", mismatched);
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
