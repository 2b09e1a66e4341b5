#include "harness/log/env_fingerprint.h"

#include <cpuid.h>
#include <dlfcn.h>
#include <sys/utsname.h>
#include <torch/torch.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <set>
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

// The CPU as its CPUID instruction describes it (not /proc/cpuinfo, which under qemu-user is
// the host's): vendor, brand string and the ISA extensions that change which kernels oneDNN,
// MKL and ATen pick. MKL dispatches on the vendor string, so it is recorded as CPUID says it.
struct CpuidRegs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};

CpuidRegs cpuid(unsigned leaf, unsigned subleaf = 0) {
  CpuidRegs r;
  if (__get_cpuid_count(leaf, subleaf, &r.a, &r.b, &r.c, &r.d) == 0) return {};
  return r;
}

std::string cpuid_vendor() {
  const CpuidRegs r = cpuid(0);
  char v[13] = {};
  std::memcpy(v, &r.b, 4);
  std::memcpy(v + 4, &r.d, 4);
  std::memcpy(v + 8, &r.c, 4);
  return v;
}

std::string cpuid_brand() {
  if (cpuid(0x80000000).a < 0x80000004) return "";
  char brand[49] = {};
  for (unsigned i = 0; i < 3; ++i) {
    const CpuidRegs r = cpuid(0x80000002 + i);
    std::memcpy(brand + 16 * i, &r, 16);
  }
  std::string s = brand;
  s.erase(0, s.find_first_not_of(' '));
  s.erase(s.find_last_not_of(' ') + 1);
  return s;
}

nlohmann::json cpuid_isa_flags() {
  const CpuidRegs l1 = cpuid(1), l7 = cpuid(7, 0), l71 = cpuid(7, 1);
  struct Flag {
    const char* name;
    unsigned reg;
    int bit;
  };
  const Flag flags[] = {
      {"sse4_1", l1.c, 19},      {"sse4_2", l1.c, 20},      {"avx", l1.c, 28},
      {"avx2", l7.b, 5},         {"fma", l1.c, 12},         {"f16c", l1.c, 29},
      {"avx512f", l7.b, 16},     {"avx512bw", l7.b, 30},    {"avx512vl", l7.b, 31},
      {"avx512dq", l7.b, 17},    {"avx512_vnni", l7.c, 11}, {"avx512_bf16", l71.a, 5},
      {"avx512_fp16", l7.d, 23}, {"amx_tile", l7.d, 24},    {"amx_bf16", l7.d, 22},
      {"amx_int8", l7.d, 25},    {"avx_vnni", l71.a, 4}};
  nlohmann::json out = nlohmann::json::array();
  for (const auto& f : flags) {
    if ((f.reg >> f.bit) & 1u) out.push_back(f.name);
  }
  return out;
}

nlohmann::json cpu_info() {
  struct utsname u {};
  uname(&u);
  return {{"vendor", cpuid_vendor()},
          {"model", cpuid_brand()},
          {"isa_flags", cpuid_isa_flags()},
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

namespace {

// Logs written before the fingerprint carried CPUID's vendor name it in the model string.
nlohmann::json cpu_vendor_of(const nlohmann::json& fp) {
  using P = nlohmann::json::json_pointer;
  if (fp.contains(P("/cpu/vendor"))) return fp.at(P("/cpu/vendor"));
  if (!fp.contains(P("/cpu/model")) || !fp.at(P("/cpu/model")).is_string()) return nullptr;
  const std::string model = fp.at(P("/cpu/model"));
  if (model.find("Intel") != std::string::npos) return "GenuineIntel";
  if (model.find("AMD") != std::string::npos) return "AuthenticAMD";
  return model;
}

}  // namespace

nlohmann::json fingerprint_key(const nlohmann::json& fp) {
  auto at = [&](const nlohmann::json::json_pointer& p) {
    return fp.contains(p) ? fp.at(p) : nlohmann::json(nullptr);
  };
  using P = nlohmann::json::json_pointer;
  nlohmann::json env = at(P("/determinism/env"));
  if (env.is_object()) env.erase("CUBLAS_WORKSPACE_CONFIG");  // set by every run on CUDA
  const nlohmann::json portable = at(P("/determinism/portable_kernels"));
  nlohmann::json key = {{"torch_version", at(P("/torch_version"))},
                        {"device", at(P("/device"))},
                        {"cpu_arch", at(P("/cpu/arch"))},
                        {"intra_op_threads", at(P("/determinism/intra_op_threads"))},
                        {"aten_cpu_capability", at(P("/determinism/aten_cpu_capability"))},
                        {"pinning_env", env},
                        {"gpus", at(P("/cuda/devices"))},
                        {"cudnn_version", at(P("/cuda/cudnn_version"))},
                        {"cudart_version", at(P("/cuda/cudart_version"))}};
  // Pinned (oneDNN capped, ATen's capability recorded above), the CPU model and its ISA
  // extensions beyond the pin change no bit: measured, an AMD EPYC with and without avx_vnni,
  // and Intel Xeons with and without AMX, give their vendor's bits (MKL's vector math chooses
  // its code by vendor). Unpinned, oneDNN picks kernels by the extensions the CPU has.
  // Portable runs ([determinism] portable) compute the same bits on every x86-64 CPU with AVX2
  // and FMA (the run refuses any other): the vendor goes too.
  const bool onednn_pinned = env.is_object() && env.contains("ONEDNN_MAX_CPU_ISA") &&
                             env.at("ONEDNN_MAX_CPU_ISA").is_string();
  if (!onednn_pinned) key["cpu_isa_flags"] = at(P("/cpu/isa_flags"));
  if (portable.is_null()) {
    key["cpu_vendor"] = cpu_vendor_of(fp);
  } else {
    key["portable_kernels"] = portable;
  }
  return key;
}

std::vector<std::string> fingerprint_differences(const nlohmann::json& a, const nlohmann::json& b) {
  const auto ka = fingerprint_key(a), kb = fingerprint_key(b);
  std::vector<std::string> out;
  auto field_of = [](const nlohmann::json& k, const std::string& f) {
    return k.contains(f) ? k.at(f) : nlohmann::json(nullptr);
  };
  std::set<std::string> fields;
  for (const auto& [field, v] : ka.items()) fields.insert(field);
  for (const auto& [field, v] : kb.items()) fields.insert(field);
  for (const auto& field : fields) {
    const auto va = field_of(ka, field), vb = field_of(kb, field);
    if (va != vb) out.push_back(field + ": " + va.dump() + " vs " + vb.dump());
  }
  return out;
}

}  // namespace cliprepro
