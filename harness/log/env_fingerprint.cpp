#include "harness/log/env_fingerprint.h"

#include <dlfcn.h>
#include <sys/utsname.h>
#include <torch/torch.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "src/train/determinism.h"

namespace cliprepro {
namespace {

std::string run_command(const std::string& cmd) {
  std::array<char, 256> buf{};
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  while (fgets(buf.data(), int(buf.size()), p) != nullptr) out += buf.data();
  pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

nlohmann::json cpu_info() {
  // ISA extensions that change which kernels oneDNN/MKL pick.
  static const std::set<std::string> kIsa{
      "sse4_1",      "sse4_2",   "avx",      "avx2",     "fma",         "f16c",
      "avx512f",     "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16",
      "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "avx_vnni"};
  std::ifstream in("/proc/cpuinfo");
  std::string line, model;
  nlohmann::json flags = nlohmann::json::array();
  bool have_flags = false;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    key.erase(key.find_last_not_of(" \t") + 1);
    const std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "model name" && model.empty()) model = value;
    if (key == "flags" && !have_flags) {
      have_flags = true;
      std::istringstream fs(value);
      for (std::string f; fs >> f;) {
        if (kIsa.count(f)) flags.push_back(f);
      }
    }
  }
  struct utsname u {};
  uname(&u);
  return {{"model", model},
          {"isa_flags", flags},
          {"arch", u.machine},
          {"logical_cores", std::thread::hardware_concurrency()}};
}

// NCCL's version from the library LibTorch loaded (looked up at run time: no NCCL headers).
nlohmann::json nccl_version() {
  using GetVersion = int (*)(int*);
  auto fn = reinterpret_cast<GetVersion>(dlsym(RTLD_DEFAULT, "ncclGetVersion"));
  int v = 0;
  if (fn == nullptr || fn(&v) != 0) return nullptr;
  return v;  // e.g. 22809 = 2.28.9
}

}  // namespace

std::string git_commit() {
  const std::string dir = CLIPREPRO_SOURCE_DIR;
  std::string sha = run_command("git -C '" + dir + "' rev-parse HEAD 2>/dev/null");
  if (sha.empty()) return "unknown";
  const std::string dirty =
      run_command("git -C '" + dir + "' status --porcelain --untracked-files=no 2>/dev/null");
  return dirty.empty() ? sha : sha + "-dirty";
}

nlohmann::json env_fingerprint() {
  struct utsname u {};
  uname(&u);
  nlohmann::json cuda = {{"available", torch::cuda::is_available()},
                         {"nccl_version", nccl_version()}};
  if (torch::cuda::is_available()) {
    const auto& hooks = at::detail::getCUDAHooks();
    cuda["device_count"] = torch::cuda::device_count();
    cuda["cudart_version"] = hooks.versionCUDART();
    cuda["cudnn_version"] = hooks.versionCuDNN();
    cuda["devices"] =
        run_command("nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null");
  }
  return {
      {"device", torch::cuda::is_available() ? "cuda" : "cpu"},
      {"cliprepro_version", CLIPREPRO_VERSION},
      {"git_commit", git_commit()},
      {"torch_version", TORCH_VERSION},
      {"compiler", std::string("g++ ") + __VERSION__},
      {"os", std::string(u.sysname) + " " + u.release},
      {"cpu", cpu_info()},
      {"cuda", cuda},
      {"mkl_available", at::hasMKL()},
      {"mkldnn_available", at::hasMKLDNN()},
      {"determinism", read_determinism_switches()},
  };
}

nlohmann::json fingerprint_key(const nlohmann::json& fp) {
  auto at = [&](const nlohmann::json::json_pointer& p) {
    return fp.contains(p) ? fp.at(p) : nlohmann::json(nullptr);
  };
  using P = nlohmann::json::json_pointer;
  nlohmann::json env = at(P("/determinism/env"));
  if (env.is_object()) env.erase("CUBLAS_WORKSPACE_CONFIG");  // set by every run on CUDA
  return {{"torch_version", at(P("/torch_version"))},
          {"device", at(P("/device"))},
          {"cpu_model", at(P("/cpu/model"))},
          {"cpu_arch", at(P("/cpu/arch"))},
          {"cpu_isa_flags", at(P("/cpu/isa_flags"))},
          {"intra_op_threads", at(P("/determinism/intra_op_threads"))},
          {"aten_cpu_capability", at(P("/determinism/aten_cpu_capability"))},
          {"pinning_env", env},
          {"gpus", at(P("/cuda/devices"))},
          {"cudnn_version", at(P("/cuda/cudnn_version"))},
          {"cudart_version", at(P("/cuda/cudart_version"))}};
}

std::vector<std::string> fingerprint_differences(const nlohmann::json& a, const nlohmann::json& b) {
  const auto ka = fingerprint_key(a), kb = fingerprint_key(b);
  std::vector<std::string> out;
  for (const auto& [field, va] : ka.items()) {
    const auto& vb = kb.at(field);
    if (va != vb) out.push_back(field + ": " + va.dump() + " vs " + vb.dump());
  }
  return out;
}

}  // namespace cliprepro
