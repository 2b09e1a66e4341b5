#!/usr/bin/env python3
"""OpenCLIP itself as the reference for cliprepro's model (the parity checks).

  make-inputs --model CFG --batch N --seed S --out IN.h5
      random images (N,3,H,W) float32 and token rows (SOT, ids, EOT, zero padding) int64.
  init --model CFG --seed S --out W.safetensors
      an OpenCLIP-initialised model (torch.manual_seed(S); open_clip.create_model(CFG)).
  run --model CFG --checkpoint W --inputs IN.h5 --out OUT.h5 [--grads] [--eval]
      loads W through open_clip.create_model(CFG, pretrained=W) and writes OpenCLIP's outputs in
      the layout of `cliprepro infer`: image/text features, logits, loss, capture points
      (forward hooks on OpenCLIP module paths), BatchNorm batch statistics, buffers, gradients.
  init-digests --model CFG --seed S --out D.json
      the digest (the log's XXH3 of the bits) of every state_dict tensor of an OpenCLIP-initialised
      model, seeded as open_clip_train/main.py seeds it (random_seed(S, 0)), in state_dict order.
  init-stats --model CFG --seeds K --out STATS.json
      per-parameter mean/std/min/max/kurtosis/zero fraction over K OpenCLIP initialisations.
  keys --model CFG --out KEYS.json
      OpenCLIP's state_dict() keys with shape and dtype, in order.
  save-torch --checkpoint W.safetensors --out F.pt [--wrap] [--module-prefix]
      the same weights as a torch.save zip: a bare state dict, or (--wrap) an OpenCLIP training
      checkpoint {"epoch", "name", "state_dict", "optimizer"}; --module-prefix adds DDP's "module.".

CFG is an OpenCLIP model name (RN50, RN101, ...) or a JSON config file (registered with
open_clip.add_model_config), e.g. src/model/configs/tiny.json.
"""
import argparse
import json
import os
import sys

import h5py
import numpy as np
import open_clip
import torch
from open_clip.loss import ClipLoss
from safetensors.torch import save_file

from cliprepro.openclip_capture import capture_points
from cliprepro.tensor_bits import bfloat16_file_type, digest


def model_name(cfg):
    if cfg.endswith(".json"):
        open_clip.add_model_config(cfg)
        return os.path.splitext(os.path.basename(cfg))[0]
    return cfg


def setup(threads):
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


def write_tensors(path, tensors, attrs):
    """The tensor-file layout of `cliprepro infer` (harness/log/tensor_file.h), written atomically:
    one dataset per name, its torch dtype in a "dtype" attribute, bfloat16 bits unconverted."""
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        for k, t in tensors.items():
            t = t.detach().cpu().contiguous()
            if t.dtype == torch.bfloat16:
                bits = t.view(torch.int16).numpy().view(np.uint16)
                ftype = bfloat16_file_type()
                space = h5py.h5s.create_simple(bits.shape) if bits.ndim else h5py.h5s.create(h5py.h5s.SCALAR)
                f.require_group(os.path.dirname(k) or "/")
                dset = h5py.h5d.create(f.id, k.encode(), ftype, space)
                dset.write(h5py.h5s.ALL, h5py.h5s.ALL, bits, mtype=ftype)
                d = f[k]
            else:
                d = f.create_dataset(k, data=t.numpy())
            d.attrs["dtype"] = str(t.dtype).replace("torch.", "")
        f.attrs["producer"] = f"open_clip {open_clip.__version__}"
        f.attrs["torch"] = str(torch.__version__)
        for k, v in attrs.items():
            f.attrs[k] = v
    os.replace(tmp, path)


def capture_modules(model):
    """OpenCLIP module paths whose outputs cliprepro captures (its CaptureTape names)."""
    points = capture_points(model)
    return [p for p, _ in model.named_modules() if p in points]


def cmd_make_inputs(a):
    cfg = open_clip.get_model_config(model_name(a.model))
    size = cfg["vision_cfg"]["image_size"]
    ctx, vocab = cfg["text_cfg"]["context_length"], cfg["text_cfg"]["vocab_size"]
    g = torch.Generator().manual_seed(a.seed)
    images = torch.randn(a.batch, 3, size, size, generator=g)
    tokens = torch.zeros(a.batch, ctx, dtype=torch.int64)
    sot, eot = vocab - 2, vocab - 1
    for i in range(a.batch):
        # Row 0 fills the context (the truncated case); the rest have random lengths.
        n = ctx - 2 if i == 0 else int(torch.randint(0, ctx - 1, (1,), generator=g))
        ids = torch.randint(1, vocab - 2, (n,), generator=g)
        tokens[i, : n + 2] = torch.cat([torch.tensor([sot]), ids, torch.tensor([eot])])
    with h5py.File(a.out, "w") as f:
        f["images"] = images.numpy()
        f["tokens"] = tokens.numpy()
        f.attrs["producer"] = "openclip_reference.py make-inputs"
        f.attrs["seed"] = str(a.seed)


def cmd_init(a):
    setup(a.threads)
    torch.manual_seed(a.seed)
    model = open_clip.create_model(model_name(a.model))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, a.out,
              metadata={"producer": f"open_clip {open_clip.__version__}", "seed": str(a.seed)})


def cmd_init_digests(a):
    import random
    torch.manual_seed(a.seed)  # open_clip_train.main's random_seed(seed, 0)
    np.random.seed(a.seed)
    random.seed(a.seed)
    model = open_clip.create_model(model_name(a.model))
    tensors = [{"name": k, "dtype": str(v.dtype).replace("torch.", ""),
                "digest": format(digest(v.detach().contiguous().numpy()), "016x")}
               for k, v in model.state_dict().items()]
    with open(a.out, "w") as f:
        json.dump({"model": a.model, "seed": a.seed, "open_clip": open_clip.__version__,
                   "tensors": tensors}, f, indent=1)


def cmd_run(a):
    setup(a.threads)
    name = model_name(a.model)
    model = open_clip.create_model(name, pretrained=a.checkpoint, device=a.device)
    model.train(not a.eval)
    with h5py.File(a.inputs, "r") as f:
        images = torch.from_numpy(f["images"][()]).to(a.device)
        tokens = torch.from_numpy(f["tokens"][()]).to(a.device)

    out = {}
    modules = dict(model.named_modules())

    def hook(path):
        def fn(_module, _inputs, output):
            out["activations/" + path] = output.detach().clone()
        return fn

    def bn_hook(path):
        # The batch statistics the kernel normalises with, from the same native kernel.
        def fn(module, inputs):
            if module.training:
                with torch.no_grad():
                    _, mean, invstd = torch.ops.aten.native_batch_norm(
                        inputs[0], module.weight, module.bias, None, None, True,
                        module.momentum, module.eps)
                out[f"bn_batch/{path}.mean"] = mean.clone()
                out[f"bn_batch/{path}.invstd"] = invstd.clone()
        return fn

    for path in capture_modules(model):
        modules[path].register_forward_hook(hook(path))
    for path, m in modules.items():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.register_forward_pre_hook(bn_hook(path))

    image_features, text_features, logit_scale = model(images, tokens)
    loss_fn = ClipLoss()
    logits_per_image, logits_per_text = loss_fn.get_logits(image_features, text_features, logit_scale)
    loss = loss_fn(image_features, text_features, logit_scale)
    if a.grads:
        loss.backward()
    out.update({
        "activations/image_features": image_features, "activations/text_features": text_features,
        "image_features": image_features, "text_features": text_features,
        "logit_scale": logit_scale, "logits_per_image": logits_per_image,
        "logits_per_text": logits_per_text, "loss": loss,
    })
    for k, b in model.named_buffers():
        if k != "attn_mask":  # non-persistent
            out["buffers/" + k] = b
    if a.grads:
        for k, p in model.named_parameters():
            if p.grad is not None:
                out["grads/" + k] = p.grad
    write_tensors(a.out, out, {"model": name, "mode": "eval" if a.eval else "train"})


def cmd_init_stats(a):
    name = model_name(a.model)
    acc = {}
    for s in range(a.seeds):
        torch.manual_seed(s)
        model = open_clip.create_model(name)
        for k, v in model.state_dict().items():
            acc.setdefault(k, []).append(v.detach().double().flatten())
    stats = {}
    for k, vs in acc.items():
        x = torch.cat(vs)
        mean, std = x.mean().item(), x.std(unbiased=False).item() if x.numel() > 1 else 0.0
        kurt = (((x - mean) ** 4).mean() / std ** 4).item() if std > 0 else 0.0
        stats[k] = {"numel": x.numel() // a.seeds, "mean": mean, "std": std, "min": x.min().item(),
                    "max": x.max().item(), "kurtosis": kurt,
                    "zero_fraction": (x == 0).double().mean().item()}
    with open(a.out, "w") as f:
        json.dump({"model": name, "seeds": a.seeds, "open_clip": open_clip.__version__,
                   "params": stats}, f, indent=1)


def cmd_keys(a):
    model = open_clip.create_model(model_name(a.model))
    keys = [{"name": k, "shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")}
            for k, v in model.state_dict().items()]
    with open(a.out, "w") as f:
        json.dump({"model": a.model, "keys": keys}, f, indent=1)


def cmd_save_torch(a):
    from safetensors.torch import load_file
    sd = load_file(a.checkpoint)
    if a.module_prefix:
        sd = {"module." + k: v for k, v in sd.items()}
    obj = sd
    if a.wrap:
        obj = {"epoch": 3, "name": "cliprepro-test", "state_dict": sd,
               "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.98),
                                                            "params": list(range(len(sd)))}]}}
    torch.save(obj, a.out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make-inputs")
    m.add_argument("--model", required=True)
    m.add_argument("--batch", type=int, default=2)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--out", required=True)
    i = sub.add_parser("init")
    i.add_argument("--model", required=True)
    i.add_argument("--seed", type=int, default=0)
    i.add_argument("--threads", type=int, default=1)
    i.add_argument("--out", required=True)
    r = sub.add_parser("run")
    r.add_argument("--model", required=True)
    r.add_argument("--checkpoint", required=True)
    r.add_argument("--inputs", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--grads", action="store_true")
    r.add_argument("--eval", action="store_true")
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--device", default="cpu")
    d = sub.add_parser("init-digests")
    d.add_argument("--model", required=True)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--out", required=True)
    s = sub.add_parser("init-stats")
    s.add_argument("--model", required=True)
    s.add_argument("--seeds", type=int, default=3)
    s.add_argument("--out", required=True)
    k = sub.add_parser("keys")
    k.add_argument("--model", required=True)
    k.add_argument("--out", required=True)
    t = sub.add_parser("save-torch")
    t.add_argument("--checkpoint", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--wrap", action="store_true")
    t.add_argument("--module-prefix", action="store_true")
    a = p.parse_args()
    {"make-inputs": cmd_make_inputs, "init": cmd_init, "run": cmd_run,
     "init-digests": cmd_init_digests, "init-stats": cmd_init_stats, "keys": cmd_keys, "save-torch": cmd_save_torch}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
