"""Op-level trace of a PyTorch program (a recorded OpenCLIP run: `python -m cliprepro.record
--trace-steps ...`) in cliprepro's trace format (docs/trace.md), so that `cliprepro trace compare`
names the first op whose inputs are equal and whose outputs differ between two of them.

A TorchDispatchMode sees every ATen op below autograd, in execution order. Each op records its
name, phase (forward; backward while the autograd engine runs a node; what the caller sets, e.g.
optimizer), module (the innermost nn.Module running; in backward the node's name), and the
XXH3-64 digest of every input tensor (before the op) and output tensor (after it), as the C++
trace does. The mode sees no op nested in another, so every op has depth 0."""
import json
import os

import h5py
import torch
import xxhash
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

FORMAT, FORMAT_VERSION = "cliprepro-trace", 1
# c10::toString of the dtypes, as the C++ trace describes tensors.
DTYPE_NAMES = {torch.float32: "Float", torch.float64: "Double", torch.float16: "Half",
               torch.bfloat16: "BFloat16", torch.int64: "Long", torch.int32: "Int",
               torch.int16: "Short", torch.int8: "Char", torch.uint8: "Byte", torch.bool: "Bool"}
# Ops whose result is memory nobody wrote yet: described, not digested (as in the C++ trace).
ALLOCATES = {"aten::empty", "aten::empty_like", "aten::empty_strided", "aten::new_empty",
             "aten::new_empty_strided", "aten::resize_", "aten::resize_as_", "aten::set_"}
OVERWRITES_SELF = {"aten::copy_", "aten::fill_", "aten::zero_", "aten::resize_", "aten::set_",
                   "aten::uniform_", "aten::normal_", "aten::random_", "aten::bernoulli_"}


def tensor_digest(t):
    """XXH3-64 of the tensor's bytes in logical (row-major) order: the log's digest."""
    h = t.detach().cpu().contiguous().reshape(-1)
    return xxhash.xxh3_64_intdigest(h.view(torch.uint8).numpy().tobytes() if h.numel() else b"")


def describe(value, digest=True):
    """[desc] or [desc, hex digest] for each tensor in `value`, [text] for anything else."""
    out = []
    for v in tree_flatten(value)[0]:
        if isinstance(v, torch.Tensor):
            desc = DTYPE_NAMES.get(v.dtype, str(v.dtype)) + "[" + ",".join(map(str, v.shape)) + "]"
            if v.device.type != "cpu":
                desc += " " + str(v.device)
            if v.layout != torch.strided:
                out.append([desc])
                continue
            if not v.is_contiguous():
                desc += " strided"
            out.append([desc, "%016x" % tensor_digest(v)] if digest else [desc])
        elif isinstance(v, float):
            out.append(["%.17g" % v])
        else:
            out.append([str(v)])
    return out


class OpTrace(TorchDispatchMode):
    """`with OpTrace(model) as t:` records t.ops; t.phase may be set by the caller."""

    def __init__(self, model=None):
        super().__init__()
        self.ops, self.phase, self.stack = [], "forward", []
        self.names = {id(m): n for n, m in model.named_modules()} if model is not None else {}
        self.hooks, self.tensor_names = [], {}

    def __enter__(self):
        def enter(module, args):  # returns None: the module's input stays as it is
            self.stack.append(self.names.get(id(module), type(module).__name__))

        def leave(module, args, output):  # returns None: the output stays as it is
            if self.stack:
                self.stack.pop()
        self.hooks = [torch.nn.modules.module.register_module_forward_pre_hook(enter),
                      torch.nn.modules.module.register_module_forward_hook(leave)]
        return super().__enter__()

    def __exit__(self, *exc):
        for h in self.hooks:
            h.remove()
        self.hooks, self.stack = [], []
        return super().__exit__(*exc)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func._schema.name
        quiet = func.is_view or name in ALLOCATES
        node = torch._C._current_autograd_node()
        phase = "backward" if node is not None else self.phase
        module = f"({node.name()})" if node is not None else (self.stack[-1] if self.stack else "")
        if not module and self.tensor_names:  # optimizer ops: the parameter or state they read
            module = next((self.tensor_names[t.data_ptr()] for t in tree_flatten((args, kwargs))[0]
                           if isinstance(t, torch.Tensor) and t.data_ptr() in self.tensor_names),
                          "")
        inputs = []
        for i, a in enumerate(func._schema.arguments):
            v = kwargs.get(a.name) if a.kwarg_only else (args[i] if i < len(args) else None)
            if a.kwarg_only and a.name not in kwargs:
                continue
            if (a.alias_info is not None and a.alias_info.is_write and a.kwarg_only) or \
                    (i == 0 and name in OVERWRITES_SELF):
                inputs.append(["out"])
            else:
                inputs.extend(describe(v, not quiet))
        out = func(*args, **kwargs)
        self.ops.append({"name": name, "phase": phase, "module": module, "inputs": inputs,
                         "outputs": describe(out, not quiet)})
        return out

    def take(self):
        ops, self.ops = self.ops, []
        return ops


def write_trace(path, steps, attrs):
    """steps: {step: [op dicts]} as OpTrace.take() gives them; attrs: provenance strings."""
    tmp = path + ".tmp"
    text = h5py.string_dtype("utf-8")
    with h5py.File(tmp, "w") as f:
        f.attrs["format"], f.attrs["format_version"] = FORMAT, str(FORMAT_VERSION)
        for k, v in attrs.items():
            f.attrs[k] = v
        for step, ops in sorted(steps.items()):
            g = f.create_group(f"steps/{step}")
            for col in ("name", "phase", "module"):
                g.create_dataset(col, data=[op[col] for op in ops], dtype=text)
            for col in ("inputs", "outputs"):
                g.create_dataset(col, data=[json.dumps(op[col]) for op in ops], dtype=text)
            g.create_dataset("depth", data=[0] * len(ops), dtype="<i8")
            g.create_dataset("parent", data=[-1] * len(ops), dtype="<i8")
            g.create_dataset("end_order", data=list(range(len(ops))), dtype="<i8")
    os.replace(tmp, path)


class OpTraceForRecorder(OpTrace):
    """One optimizer step of a recorded run: forward and backward as OpTrace sees them, and
    "optimizer" from the optimizer's step (GradScaler's unscale before it stays "forward")."""

    def __init__(self, model, optimizer):
        super().__init__(model)
        names = {id(p): n for n, p in model.named_parameters()}

        def optimizer_starts(opt, args, kwargs):  # names as the log's (params/, optimizer/...)
            self.phase = "optimizer"
            for group in opt.param_groups:
                for p in group["params"]:
                    name = names.get(id(p), "?")
                    self.tensor_names[p.data_ptr()] = "params/" + name
                    for k, v in opt.state.get(p, {}).items():
                        if isinstance(v, torch.Tensor):
                            self.tensor_names[v.data_ptr()] = f"optimizer/{k}/{name}"
        self.handles = [optimizer.register_step_pre_hook(optimizer_starts)]
        self.__enter__()

    def stop(self):
        self.__exit__(None, None, None)
        for h in self.handles:
            h.remove()
        return self.take()
