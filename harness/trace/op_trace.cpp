#include "harness/trace/op_trace.h"

#include <ATen/record_function.h>
#include <c10/core/CPUAllocator.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>

#include "harness/log/digest.h"
#include "src/model/capture.h"

namespace cliprepro {

struct OpTracer::Impl {
  std::map<const void*, std::string> tensor_names;
  std::string phase;
  std::vector<TracedOp> ops;
  std::vector<int64_t> forward_seq;  // per op: the autograd sequence number it may create
  struct Node {
    int64_t seq;
    std::string name;
  };
  std::vector<Node> nodes;               // backward nodes running (their ops are theirs)
  std::vector<Node> op_node;             // per op: the backward node it ran in ({-1, ""}: none)
  std::vector<int64_t> open;             // ops started and not yet ended, innermost last
  std::vector<int64_t> pending_forward;  // forward ops not yet followed by a capture point
  std::string last_capture;
  int64_t ends = 0;
  at::CallbackHandle handle = 0;
  std::mutex mutex;  // the autograd engine may call from its own threads (CUDA)
  std::unique_ptr<c10::Allocator> zeroing;

  void settle_forward(const std::string& module) {
    for (const int64_t i : pending_forward) ops[size_t(i)].module = module;
    pending_forward.clear();
  }
};

namespace {

OpTracer::Impl* g_active = nullptr;

// While tracing, new CPU memory is zeroed: kernels read buffers they have not written yet (mean's
// reduced-precision path casts its fresh output before summing into it), and digests of
// whatever the allocator held would differ from run to run and hide the real first difference.
// The values a step computes are unchanged (what it reads before writing, it overwrites).
class ZeroingAllocator final : public c10::Allocator {
 public:
  explicit ZeroingAllocator(c10::Allocator* base) : base_(base) {}
  c10::DataPtr allocate(size_t n) override {
    c10::DataPtr p = base_->allocate(n);
    if (n > 0) std::memset(p.get(), 0, n);
    return p;
  }
  c10::DeleterFnPtr raw_deleter() const override { return base_->raw_deleter(); }
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
  c10::Allocator* base() const { return base_; }

 private:
  c10::Allocator* base_;
};
constexpr uint8_t kAllocatorPriority = 100;  // above LibTorch's default CPU allocator (0)

struct OpContext : at::ObserverContext {
  OpContext(int64_t i, bool n, bool v = false) : index(i), node(n), view(v) {}
  int64_t index;
  bool node;  // a backward node's scope, not an op
  bool view;  // a view or allocating op: its tensors are not digested
};

std::string shape_text(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d) s += (d ? "," : "") + std::to_string(t.size(d));
  return s + "]";
}

// A view op (its result aliases an argument without writing it: view, slice, transpose, …)
// computes no value; a view may also be taken of a buffer still being written (cat's output),
// whose unwritten bytes are whatever memory held. Its tensors are described, not digested.
bool is_view_op(const std::optional<c10::FunctionSchema>& schema) {
  if (!schema) return false;
  for (const auto& r : schema->returns()) {
    if (r.alias_info() != nullptr && !r.alias_info()->isWrite()) return true;
  }
  return false;
}

bool overwrites_self(const std::string& name) {
  static const std::set<std::string> kOps{"aten::copy_",   "aten::fill_",   "aten::zero_",
                                          "aten::resize_", "aten::set_",    "aten::uniform_",
                                          "aten::normal_", "aten::random_", "aten::bernoulli_"};
  return kOps.contains(name);
}

// Ops whose result is memory nobody has written yet (resize_ of a kernel's output, set_ onto a
// fresh storage): its bytes are whatever the allocator held, so it is described, not digested.
bool allocates(const std::string& name) {
  static const std::set<std::string> kOps{"aten::empty",
                                          "aten::empty_like",
                                          "aten::empty_strided",
                                          "aten::new_empty",
                                          "aten::new_empty_strided",
                                          "aten::resize_",
                                          "aten::resize_as_",
                                          "aten::set_"};
  return kOps.contains(name);
}

void describe(const c10::IValue& v, std::vector<TracedValue>& out, bool digest = true) {
  if (v.isTensor()) {
    const at::Tensor& t = v.toTensor();
    TracedValue tv;
    if (!t.defined()) {
      tv.desc = "undefined";
    } else {
      tv.desc = std::string(c10::toString(t.scalar_type())) + shape_text(t);
      if (!t.is_cpu()) tv.desc += " " + t.device().str();
      if (digest && t.layout() == at::kStrided && !t.is_meta()) {
        if (!t.is_contiguous()) tv.desc += " strided";
        tv.digest = tensor_digest(t);
        tv.has_digest = true;
      }
    }
    out.push_back(std::move(tv));
  } else if (v.isTensorList()) {
    for (const at::Tensor& t : v.toTensorVector()) describe(c10::IValue(t), out, digest);
  } else if (v.isList()) {
    for (const c10::IValue& e : v.toListRef()) describe(e, out, digest);
  } else if (v.isStorage()) {
    out.push_back({"Storage(" + std::to_string(v.toStorage().nbytes()) + " bytes)"});
  } else if (v.isDouble()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v.toDouble());
    out.push_back({buf});
  } else {
    std::ostringstream os;
    os << v;
    out.push_back({os.str()});
  }
}

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
  OpTracer::Impl* im = g_active;
  if (im == nullptr) return nullptr;
  at::RecordFunctionGuard untraced(false);  // the digests below dispatch ops of their own
  at::NoGradGuard no_grad;                  // ... and must not create autograd nodes
  std::lock_guard lock(im->mutex);
  if (fn.scope() == at::RecordScope::BACKWARD_FUNCTION) {
    im->nodes.push_back({fn.seqNr(), fn.name()});
    return std::make_unique<OpContext>(-1, true);
  }
  if (im->phase.empty()) return nullptr;
  TracedOp op;
  op.name = fn.name();
  op.phase = im->phase;
  op.depth = int32_t(im->open.size());
  op.parent = im->open.empty() ? -1 : im->open.back();
  const auto schema = fn.operator_schema();
  const bool view = is_view_op(schema) || allocates(fn.name());
  const auto inputs = fn.inputs();
  for (size_t i = 0; i < inputs.size(); ++i) {
    // An out= argument is written, not read: what it held before is not an input; nor is the
    // `self` of an op that overwrites it whole (copy_ into a fresh buffer's slice, fill_, …).
    if (schema && i < schema->arguments().size() &&
        (schema->arguments()[i].is_out() || (i == 0 && overwrites_self(op.name)))) {
      op.inputs.push_back({"out"});
      continue;
    }
    describe(inputs[i], op.inputs, !view);
    if (op.module.empty() && inputs[i].isTensor() && inputs[i].toTensor().defined()) {
      const auto it = im->tensor_names.find(inputs[i].toTensor().data_ptr());
      if (it != im->tensor_names.end() && im->phase == "optimizer") op.module = it->second;
    }
  }
  const auto index = int64_t(im->ops.size());
  im->ops.push_back(std::move(op));
  im->forward_seq.push_back(im->phase == "forward" ? fn.seqNr() : -1);
  im->op_node.push_back(im->nodes.empty() ? OpTracer::Impl::Node{-1, ""} : im->nodes.back());
  if (im->phase == "forward") im->pending_forward.push_back(index);
  im->open.push_back(index);
  return std::make_unique<OpContext>(index, false, view);
}

void on_end(const at::RecordFunction& fn, at::ObserverContext* ctx_base) {
  OpTracer::Impl* im = g_active;
  if (im == nullptr || ctx_base == nullptr) return;
  at::RecordFunctionGuard untraced(false);
  at::NoGradGuard no_grad;
  std::lock_guard lock(im->mutex);
  const auto* ctx = static_cast<const OpContext*>(ctx_base);
  if (ctx->node) {
    if (!im->nodes.empty()) im->nodes.pop_back();
    return;
  }
  if (ctx->index >= int64_t(im->ops.size())) return;  // taken meanwhile
  TracedOp& op = im->ops[size_t(ctx->index)];
  for (const c10::IValue& v : fn.outputs()) describe(v, op.outputs, !ctx->view);
  op.end_order = im->ends++;
  std::erase(im->open, ctx->index);
}

void on_capture(const std::string& name) {
  OpTracer::Impl* im = g_active;
  if (im == nullptr) return;
  std::lock_guard lock(im->mutex);
  im->settle_forward(name);
  im->last_capture = name;
}

}  // namespace

OpTracer::OpTracer(std::map<const void*, std::string> tensor_names) : impl_(new Impl) {
  if (g_active != nullptr) {
    delete impl_;
    throw std::logic_error("one OpTracer at a time");
  }
  impl_->tensor_names = std::move(tensor_names);
  impl_->zeroing = std::make_unique<ZeroingAllocator>(c10::GetCPUAllocator());
  c10::SetCPUAllocator(impl_->zeroing.get(), kAllocatorPriority);
  g_active = impl_;
  capture_observer = &on_capture;
  impl_->handle = at::addThreadLocalCallback(
      at::RecordFunctionCallback(&on_start, &on_end)
          .needsInputs(true)
          .needsOutputs(true)
          .scopes({at::RecordScope::FUNCTION, at::RecordScope::BACKWARD_FUNCTION}));
}

OpTracer::~OpTracer() {
  at::removeCallback(impl_->handle);
  capture_observer = nullptr;
  g_active = nullptr;
  // Memory it gave out is freed by its base allocator's deleter, so it may outlive the tracer.
  c10::SetCPUAllocator(static_cast<ZeroingAllocator*>(impl_->zeroing.get())->base(),
                       kAllocatorPriority);
  (void)impl_->zeroing.release();  // tensors allocated through it may still point at it
  delete impl_;
}

void OpTracer::set_phase(const std::string& phase) {
  std::lock_guard lock(impl_->mutex);
  if (impl_->phase == "forward" && phase != "forward" && !impl_->pending_forward.empty()) {
    // Ops after the last capture point of the forward: the loss, unless nothing was captured.
    impl_->settle_forward(impl_->last_capture.empty() ? "(forward)"
                                                      : "after " + impl_->last_capture);
  }
  impl_->phase = phase;
}

std::vector<TracedOp> OpTracer::take() {
  std::lock_guard lock(impl_->mutex);
  Impl& im = *impl_;
  im.settle_forward(im.last_capture.empty() ? "(forward)" : "after " + im.last_capture);
  // A backward op belongs to the module whose forward op created its node.
  std::map<int64_t, std::string> module_of_seq;
  for (size_t i = 0; i < im.ops.size(); ++i) {
    if (im.forward_seq[i] >= 0) module_of_seq.emplace(im.forward_seq[i], im.ops[i].module);
  }
  for (size_t i = 0; i < im.ops.size(); ++i) {
    const auto& node = im.op_node[i];
    if (im.ops[i].phase != "backward" || node.name.empty()) continue;
    const auto it = module_of_seq.find(node.seq);
    im.ops[i].module = (it != module_of_seq.end() ? it->second + " " : "") + "(" + node.name + ")";
  }
  std::vector<TracedOp> out = std::move(im.ops);
  im.ops.clear();
  im.forward_seq.clear();
  im.op_node.clear();
  im.open.clear();
  im.nodes.clear();
  im.pending_forward.clear();
  im.last_capture.clear();
  im.ends = 0;
  return out;
}

}  // namespace cliprepro
