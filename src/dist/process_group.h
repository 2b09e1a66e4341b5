// c10d process groups as torchrun launches them: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
// MASTER_PORT from the environment; Gloo on CPU, NCCL on CUDA. Collectives used by the
// trainer: all_gather (plain and autograd-aware, as torch.distributed.nn.all_gather), all-reduce
// of gradients as DDP does it, broadcast, barrier.
#pragma once
#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace c10d {
class Backend;
}

namespace cliprepro::dist {

// True when torchrun (or anything that sets WORLD_SIZE and RANK) started this process.
bool launched_distributed();
// RANK and WORLD_SIZE from the launcher's environment (0 and 1 when not launched so).
int launch_rank();
int launch_world_size();

class ProcessGroup {
 public:
  // backend: "gloo" or "nccl". Rendezvous through the TCPStore torchrun's agent hosts
  // (TORCHELASTIC_USE_AGENT_STORE) or, otherwise, one rank 0 serves at MASTER_ADDR:MASTER_PORT.
  explicit ProcessGroup(const std::string& backend,
                        std::chrono::milliseconds timeout = std::chrono::minutes(5));
  ~ProcessGroup();

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  int local_rank() const { return local_rank_; }
  const std::string& backend_name() const { return backend_name_; }

  // world_size tensors, rank order; `t` must be contiguous, same shape on every rank.
  std::vector<torch::Tensor> all_gather(const torch::Tensor& t);
  void all_reduce_sum(torch::Tensor& t);
  void broadcast(torch::Tensor& t, int root);
  void barrier();
  // Sum over ranks of inputs[r] lands on rank r (inputs: world_size tensors of one shape).
  torch::Tensor reduce_scatter_sum(const std::vector<torch::Tensor>& inputs);

 private:
  int rank_ = 0, world_size_ = 1, local_rank_ = 0;
  std::string backend_name_;
  c10::intrusive_ptr<c10d::Backend> pg_;
};

// torch.distributed.nn.all_gather: forward gathers; backward sums, over ranks, the gradient
// each rank holds for this rank's slice. Gloo path as PyTorch's (all-to-all, stack, sum over
// dim 0 in rank order), so the bits match.
std::vector<torch::Tensor> all_gather_with_grad(ProcessGroup& pg, const torch::Tensor& t);

// DDP's gradient averaging: each gradient multiplied by 1/world_size, then summed across
// ranks (elementwise; with 2 ranks independent of bucketing). Parameters without a gradient
// are skipped on every rank alike.
void average_gradients(ProcessGroup& pg, const std::vector<torch::Tensor>& params);

// Makes every rank's parameters and buffers equal to rank 0's.
void broadcast_module(ProcessGroup& pg, torch::nn::Module& m);
// DDP (broadcast_buffers=True, OpenCLIP's setting) copies rank 0's buffers to every rank before
// each training forward, so BatchNorm running statistics follow rank 0's.
void broadcast_buffers(ProcessGroup& pg, torch::nn::Module& m);

}  // namespace cliprepro::dist
