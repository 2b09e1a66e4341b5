#include "src/dist/process_group.h"

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#ifdef USE_C10D_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "src/python_number.h"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

namespace cliprepro::dist {
namespace {

std::string env_or(const char* key, const std::string& fallback) {
  const char* v = std::getenv(key);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

int env_int(const char* key) {
  const char* v = std::getenv(key);
  if (v == nullptr)
    throw std::runtime_error(std::string("distributed run: $") + key + " is not set");
  return std::stoi(v);
}

// Gloo's transport devices, chosen as torch.distributed does for a group, except on one host:
// the interfaces GLOO_SOCKET_IFNAME lists (comma-separated); loopback when every rank runs on
// this host (LOCAL_WORLD_SIZE == WORLD_SIZE, torchrun's single-node launch); otherwise the
// address this host's name resolves to (loopback when it resolves to none). Each rank
// advertises its device's address to the others through the store, so a rank of a multi-node
// group bound to 127.0.0.1 would give the other nodes an address they cannot reach.
void add_gloo_devices(c10d::ProcessGroupGloo::Options& options, int world_size) {
  const std::string ifnames = env_or("GLOO_SOCKET_IFNAME", "");
  if (!ifnames.empty()) {
    size_t begin = 0;
    while (begin <= ifnames.size()) {
      const size_t end = std::min(ifnames.find(',', begin), ifnames.size());
      if (end > begin) {
        options.devices.push_back(
            c10d::ProcessGroupGloo::createDeviceForInterface(ifnames.substr(begin, end - begin)));
      }
      begin = end + 1;
    }
    if (!options.devices.empty()) return;
  }
  const std::string local_world = env_or("LOCAL_WORLD_SIZE", "");
  if (!local_world.empty() && std::stoi(local_world) == world_size) {
    options.devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  } else {
    options.devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
}

void wait(const c10::intrusive_ptr<c10d::Work>& w) {
  if (!w->wait()) throw std::runtime_error("c10d collective failed");
}

}  // namespace

bool launched_distributed() {
  return std::getenv("WORLD_SIZE") != nullptr && std::getenv("RANK") != nullptr;
}

int launch_rank() { return launched_distributed() ? env_int("RANK") : 0; }
int launch_world_size() { return launched_distributed() ? env_int("WORLD_SIZE") : 1; }

ProcessGroup::ProcessGroup(const std::string& backend, std::chrono::milliseconds timeout)
    : backend_name_(backend) {
  rank_ = env_int("RANK");
  world_size_ = env_int("WORLD_SIZE");
  local_rank_ = std::stoi(env_or("LOCAL_RANK", "0"));
  const std::string host = env_or("MASTER_ADDR", "127.0.0.1");
  const int port = std::stoi(env_or("MASTER_PORT", "29500"));
  c10d::TCPStoreOptions opts;
  opts.port = uint16_t(port);
  // torchrun's agent already serves the store; otherwise rank 0 does.
  const bool agent_store = env_or("TORCHELASTIC_USE_AGENT_STORE", "") == "True";
  opts.isServer = !agent_store && rank_ == 0;
  opts.numWorkers = size_t(world_size_);
  opts.waitWorkers = false;
  opts.timeout = timeout;
  c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::TCPStore>(host, opts);
  // Same key space as torch.distributed's default group, so restarts do not collide.
  store = c10::make_intrusive<c10d::PrefixStore>(
      "/worker/attempt_" + env_or("TORCHELASTIC_RESTART_COUNT", "0"), store);
  if (backend == "gloo") {
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    add_gloo_devices(*options, world_size_);
    pg_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank_, world_size_, options);
  } else if (backend == "nccl") {
#ifdef USE_C10D_NCCL
    if (!torch::cuda::is_available() || local_rank_ >= int(torch::cuda::device_count())) {
      throw std::runtime_error(
          "dist-backend 'nccl' needs a CUDA device for local rank " + std::to_string(local_rank_) +
          " (" + std::to_string(torch::cuda::device_count()) + " visible); use gloo on CPU");
    }
    // As open_clip_train: torch.cuda.set_device(local_rank), then the NCCL group.
    c10::cuda::set_device(c10::DeviceIndex(local_rank_));
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = timeout;
    pg_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank_, world_size_, options);
#else
    throw std::runtime_error("dist-backend 'nccl': this LibTorch was built without NCCL");
#endif
  } else {
    throw std::runtime_error("unknown dist-backend '" + backend + "' (gloo or nccl)");
  }
}

ProcessGroup::~ProcessGroup() = default;

std::vector<torch::Tensor> ProcessGroup::all_gather(const torch::Tensor& t) {
  auto in = t.contiguous();
  std::vector<std::vector<at::Tensor>> out(1);
  for (int i = 0; i < world_size_; ++i) out[0].push_back(torch::empty_like(in));
  std::vector<at::Tensor> inputs{in};
  wait(pg_->allgather(out, inputs));
  return out[0];
}

void ProcessGroup::all_reduce_sum(torch::Tensor& t) {
  std::vector<at::Tensor> v{t};
  wait(pg_->allreduce(v));
}

void ProcessGroup::broadcast(torch::Tensor& t, int root) {
  std::vector<at::Tensor> v{t};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  wait(pg_->broadcast(v, o));
}

void ProcessGroup::barrier() { wait(pg_->barrier()); }

torch::Tensor ProcessGroup::reduce_scatter_sum(const std::vector<torch::Tensor>& inputs) {
  std::vector<at::Tensor> out{torch::empty_like(inputs.at(size_t(rank_)))};
  std::vector<std::vector<at::Tensor>> in(1);
  for (const auto& t : inputs) in[0].push_back(t.contiguous());
  wait(pg_->reduce_scatter(out, in));
  return out[0];
}

namespace {

class AllGatherWithGrad : public torch::autograd::Function<AllGatherWithGrad> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx,
                                                const torch::Tensor& t, ProcessGroup* pg) {
    ctx->saved_data["pg"] = reinterpret_cast<int64_t>(pg);
    return pg->all_gather(t.contiguous());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* pg = reinterpret_cast<ProcessGroup*>(ctx->saved_data["pg"].toInt());
    for (auto& g : grads) {
      if (!g.defined()) throw std::runtime_error("all_gather_with_grad: undefined slice grad");
    }
    // torch.distributed.nn's _AllGather.backward: NCCL reduce-scatters the slice gradients;
    // other backends all-to-all them and sum torch.stack(gxs) over dim 0 in rank order.
    if (pg->backend_name() == "nccl") return {pg->reduce_scatter_sum(grads), torch::Tensor()};
    // The all-to-all, by gathering every rank's stacked slice gradients.
    auto gathered = pg->all_gather(torch::stack(grads).contiguous());
    std::vector<torch::Tensor> gxs;
    for (auto& g : gathered) gxs.push_back(g[pg->rank()]);
    return {torch::sum(torch::stack(gxs), 0), torch::Tensor()};
  }
};

}  // namespace

std::vector<torch::Tensor> all_gather_with_grad(ProcessGroup& pg, const torch::Tensor& t) {
  return AllGatherWithGrad::apply(t, &pg);
}

void average_gradients(ProcessGroup& pg, const std::vector<torch::Tensor>& params) {
  const double scale = 1.0 / pg.world_size();
  for (const auto& p : params) {
    auto g = p.grad();
    if (!g.defined()) continue;
    // DDP's reducer: at::mul_out(bucket_view, grad, wrapped_scalar_tensor(1. / world_size)).
    g.mul_(py_number(scale));
    pg.all_reduce_sum(g);
  }
}

void broadcast_module(ProcessGroup& pg, torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  for (auto& p : m.parameters()) pg.broadcast(p, 0);
  broadcast_buffers(pg, m);
}

void broadcast_buffers(ProcessGroup& pg, torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  for (auto& b : m.buffers()) pg.broadcast(b, 0);
}

}  // namespace cliprepro::dist
