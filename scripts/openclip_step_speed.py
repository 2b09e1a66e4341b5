#!/usr/bin/env python3
"""OpenCLIP's own training step, timed: images/s of open_clip.create_model(MODEL) with AdamW,
ClipLoss and open_clip_train's autocast/GradScaler per precision, on random batches (no loader), as
open_clip_train.main runs it by default (no deterministic algorithms, cuDNN benchmark off).

    openclip_step_speed.py --model RN50 --batch 128 --device cuda [--steps 20] [--precisions ...]

Prints one line per precision: "<precision> <images/s>", over the steps after the first fifth.
MODEL may be a JSON config path; "tiny" is cliprepro's src/model/configs/tiny.json.
"""
import argparse
import os
import time

import open_clip
import torch
from open_clip.loss import ClipLoss
from open_clip_train.precision import get_autocast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="RN50")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--precisions", nargs="*", default=["fp32", "amp", "amp_bf16"])
    a = ap.parse_args()
    name = a.model
    if name == "tiny":
        name = os.path.join(ROOT, "src/model/configs/tiny.json")
    if name.endswith(".json"):
        open_clip.add_model_config(name)
        name = os.path.splitext(os.path.basename(name))[0]
    cfg = open_clip.get_model_config(name)
    size, ctx = cfg["vision_cfg"]["image_size"], cfg["text_cfg"]["context_length"]
    vocab = cfg["text_cfg"].get("vocab_size", 49408)
    dev = torch.device(a.device)
    for precision in a.precisions:
        torch.manual_seed(0)
        model = open_clip.create_model(name, device=dev, output_dict=True)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
        scaler = torch.amp.GradScaler(device=dev.type) if precision == "amp" else None
        autocast = get_autocast(precision, device_type=dev.type)
        loss_fn = ClipLoss()
        images = torch.randn(a.batch, 3, size, size, device=dev)
        texts = torch.randint(0, vocab, (a.batch, ctx), device=dev)
        warm = max(a.steps // 5, 1)
        t0 = None
        for step in range(a.steps):
            if step == warm:
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            opt.zero_grad()
            with autocast():
                out = model(images, texts)
                loss = loss_fn(**out)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        ips = a.batch * (a.steps - warm) / (time.perf_counter() - t0)
        print(f"{precision} {ips:.1f}", flush=True)


if __name__ == "__main__":
    main()
