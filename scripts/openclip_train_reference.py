#!/usr/bin/env python3
"""OpenCLIP's own training loop as the reference for cliprepro's training steps.

    openclip_train_reference.py --run-log RUN.h5 --model-config CFG --out REF.h5 [--threads N]

Reads a cliprepro log (`--run-log`: step 0 parameters and buffers, and every step's `data/images` and
`data/texts`, stored as full tensors) and rebuilds the run with OpenCLIP: `open_clip.create_model`
with the log's precision and weights, `torch.optim.AdamW` with main.py's two parameter groups,
`open_clip_train.scheduler.cosine_lr`, `open_clip.create_loss`, `torch.amp.GradScaler` under
amp, DDP when launched by torchrun (every precision: fp32, amp, amp_bf16, fp16, bf16, pure_*), and runs `open_clip_train.train.train_one_epoch` itself on
those batches. Writes, for every step s, `step<s>/params/<name>`, `step<s>/buffers/<name>`,
`step<s>/optimizer/{exp_avg,exp_avg_sq,step}/<name>` and `step<s>/scaler/{scale,growth_tracker}`
(amp), taken after the step (after the logit_scale clamp), with cliprepro's log names.

Under torchrun, RANK in `--run-log` and `--out` (the literal text "{RANK}") is replaced by the rank.
CFG is an OpenCLIP model name or a JSON config file (registered with open_clip.add_model_config).
"""
import argparse
import logging
import os
import types

import open_clip
import torch
import torch.distributed as dist
from open_clip_train.scheduler import cosine_lr
from open_clip_train.train import train_one_epoch, unwrap_model
from torch import optim

from openclip_reference import model_name, write_tensors
from cliprepro import Log  # python/ (installed by setup; tests put the tree on PYTHONPATH)


class LogBatches:
    """The log's batches as OpenCLIP's DataInfo.dataloader: each step's logged batch split back
    into its accum-freq micro-batches. Snapshots the state after step s when asked for step
    s+1's first micro-batch (train_one_epoch has finished the step, clamp included)."""

    def __init__(self, f, steps, accum, snapshot):
        self.f, self.steps, self.accum, self.snapshot = f, steps, accum, snapshot
        self.num_batches = steps * accum
        self.num_samples = self.num_batches

    def __iter__(self):
        for s in range(1, self.steps + 1):
            images = self.f.tensor("data/images", s, torch=True).chunk(self.accum)
            texts = self.f.tensor("data/texts", s, torch=True).chunk(self.accum)
            for j in range(self.accum):
                if s > 1 and j == 0:
                    self.snapshot(s - 1)
                yield images[j], texts[j]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-log", required=True)
    ap.add_argument("--model-config", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(a.threads)
    torch.use_deterministic_algorithms(True)

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        dist.init_process_group("gloo")
    f = Log(a.run_log.replace("{RANK}", str(rank)))
    cfg = f.config
    if cfg["world-size"] != world:
        raise SystemExit(f"log is from world size {cfg['world-size']}, launched with {world}")
    steps = int(cfg["total-steps"])

    model = open_clip.create_model(model_name(a.model_config), precision=cfg["precision"],
                                   device="cpu", output_dict=True)
    state = {n[len("params/"):]: f.tensor(n, 0, torch=True) for n in f.names("params/*")}
    state.update({n[len("buffers/"):]: f.tensor(n, 0, torch=True) for n in f.names("buffers/*")})
    model.load_state_dict(state, strict=True)
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)

    args = types.SimpleNamespace(
        device="cpu", precision=cfg["precision"], accum_freq=cfg.get("accum-freq", 1),
        distill=False, skip_scheduler=False, horovod=False, wandb=False, log_every_n_steps=1,
        grad_clip_norm=cfg["grad-clip-norm"] or None, batch_size=cfg["batch-size"],
        world_size=world, rank=rank, local_rank=rank, model=cfg["model"], siglip=False,
        local_loss=cfg["local-loss"], gather_with_grad=cfg["gather-with-grad"])
    # open_clip_train/main.py's optimizer: no weight decay for gains, biases and logit_scale.
    exclude = lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n
    named = list(model.named_parameters())
    optimizer = optim.AdamW(
        [{"params": [p for n, p in named if exclude(n, p) and p.requires_grad], "weight_decay": 0.},
         {"params": [p for n, p in named if not exclude(n, p) and p.requires_grad],
          "weight_decay": cfg["wd"]}],
        lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"])
    scaler = torch.amp.GradScaler(device="cpu") if cfg["precision"] == "amp" else None
    scheduler = cosine_lr(optimizer, cfg["lr"], cfg["warmup"], steps)
    loss = open_clip.create_loss(args)

    out = {}

    def snapshot(s):
        m = unwrap_model(model)
        for n, p in m.named_parameters():
            out[f"step{s}/params/{n}"] = p.detach().clone()
            st = optimizer.state.get(p, {})
            for k in ("exp_avg", "exp_avg_sq", "step"):
                if k in st:
                    out[f"step{s}/optimizer/{k}/{n}"] = st[k].detach().clone()
        for n, b in m.named_buffers():
            if n.endswith("attn_mask"):  # non-persistent, not in cliprepro's log
                continue
            out[f"step{s}/buffers/{n}"] = b.detach().clone()
        if scaler is not None:
            out[f"step{s}/scaler/scale"] = scaler._scale.detach().clone()
            out[f"step{s}/scaler/growth_tracker"] = scaler._growth_tracker.detach().clone()

    data = {"train": types.SimpleNamespace(dataloader=LogBatches(f, steps, args.accum_freq, snapshot),
                                           set_epoch=lambda e: None)}
    train_one_epoch(model, data, loss, 0, optimizer, scaler, scheduler, None, args)
    snapshot(steps)

    write_tensors(a.out.replace("{RANK}", str(rank)), out,
                  {"mode": "train", "steps": str(steps), "precision": cfg["precision"]})
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
