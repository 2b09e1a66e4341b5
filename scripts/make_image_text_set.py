#!/usr/bin/env python3
"""Writes a small image-caption set in OpenCLIP's two training formats, for tests and demos:

    make_image_text_set.py OUT_DIR N [--corrupt K] [--size S] [--no-shards]

OUT_DIR/images/{i:04d}.jpg|.png — N random-content images of varied sizes (every third a PNG),
OUT_DIR/train.csv — tab-separated `filepath` (absolute) and `title` columns (OpenCLIP's
  defaults for --csv-img-key / --csv-caption-key / --csv-separator),
OUT_DIR/shards/shard-{000..S}.tar — the same samples as WebDataset shards (KEY.jpg/png + KEY.txt,
  8 samples per shard) plus one sample without caption (which readers skip).
With --corrupt K, row K of the CSV points at a truncated JPEG. With --val-classes C, also
OUT_DIR/val/<class>/NN.jpg: an ImageFolder (torchvision layout, OpenCLIP's --imagenet-val) of C
classes named after colours, 4 images each, filled with the class's colour plus noise; with
--val-wordnet the class folders are named as ImageNet's first C WordNet ids instead (n01440764,
...: what OpenCLIP's zero_shot_eval reads as its first C classes, tench, goldfish, ...).
With --shapes, each training image shows its caption (a coloured square, circle, triangle or
star at a random place and size on a noisy grey background), so a model can learn the set;
captions are then "a <colour> <thing>".
With --size S, every image is an S x S JPEG instead (OpenCLIP RN50's 224 px for benchmarks:
scripts/bench_openclip.py); --no-shards skips the WebDataset shards.
"""
import argparse
import io
import os
import tarfile

import numpy as np
from PIL import Image, ImageDraw

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange"]
THINGS = ["square", "circle", "triangle", "star"]
RGB = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220),
       "yellow": (230, 220, 30), "purple": (140, 40, 160), "orange": (240, 140, 20)}

# ImageNet-1k's first class folders (sorted WordNet ids): tench, goldfish, great white shark, ...
WORDNET_IDS = ["n01440764", "n01443537", "n01484850", "n01491361", "n01494475", "n01496331"]


def draw_shape(rng, w, h, colour, thing):
    """A noisy grey background with one filled shape of `colour` covering 30-60 % of the side."""
    bg = rng.normal(128, 30, size=(h // 4 + 1, w // 4 + 1, 3)).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(bg).resize((w, h), Image.BILINEAR)
    d = ImageDraw.Draw(img)
    r = int(min(w, h) * rng.uniform(0.15, 0.3))
    cx, cy = int(rng.integers(r, w - r + 1)), int(rng.integers(r, h - r + 1))
    fill = RGB[colour]
    if thing == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif thing == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif thing == "triangle":
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    else:
        pts = [(cx + (r if k % 2 == 0 else r // 2) * np.cos(np.pi * k / 5 - np.pi / 2),
                cy + (r if k % 2 == 0 else r // 2) * np.sin(np.pi * k / 5 - np.pi / 2)) for k in range(10)]
        d.polygon(pts, fill=fill)
    return img


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("n", type=int)
    ap.add_argument("--corrupt", type=int, default=-1)
    ap.add_argument("--val-classes", type=int, default=0)
    ap.add_argument("--val-wordnet", action="store_true")
    ap.add_argument("--shapes", action="store_true")
    ap.add_argument("--size", type=int, default=0, help="every image S x S, JPEG")
    ap.add_argument("--no-shards", action="store_true")
    a = ap.parse_args()
    rng = np.random.default_rng(7)
    out = os.path.abspath(a.out)
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    if not a.no_shards:
        os.makedirs(os.path.join(out, "shards"), exist_ok=True)
    rows = []
    for i in range(a.n):
        h, w = int(rng.integers(40, 120)), int(rng.integers(40, 120))
        if a.size > 0:
            h = w = a.size
        colour, thing = COLOURS[i % len(COLOURS)], THINGS[(i // 2) % len(THINGS)]
        if a.shapes:
            img = draw_shape(rng, w, h, colour, thing)
        else:
            px = rng.integers(0, 256, size=(h // 4 + 1, w // 4 + 1, 3)).astype(np.uint8)
            img = Image.fromarray(px).resize((w, h), Image.BILINEAR)
        ext = "png" if i % 3 == 2 and a.size <= 0 else "jpg"
        buf = io.BytesIO()
        img.save(buf, format="PNG" if ext == "png" else "JPEG", quality=90)
        data = buf.getvalue()
        if i == a.corrupt:
            data = data[: len(data) // 3]
        path = os.path.join(out, "images", f"{i:04d}.{ext}")
        with open(path, "wb") as f:
            f.write(data)
        caption = f"a {colour} {thing}" if a.shapes else f"a {colour} {thing}, photo {i}"
        rows.append((path, caption, ext, data))
    with open(os.path.join(out, "train.csv"), "w") as f:
        f.write("filepath\ttitle\n")
        for path, caption, _, _ in rows:
            f.write(f"{path}\t{caption}\n")

    def add(tar, name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    per_shard = 8
    shards = 0 if a.no_shards else (a.n + per_shard - 1) // per_shard
    for s in range(shards):
        with tarfile.open(os.path.join(out, "shards", f"shard-{s:03d}.tar"), "w") as tar:
            for i in range(s * per_shard, min(a.n, (s + 1) * per_shard)):
                _, caption, ext, data = rows[i]
                add(tar, f"{i:06d}.{ext}", data)
                add(tar, f"{i:06d}.txt", caption.encode())
            if s == 0:
                add(tar, "orphan.jpg", rows[0][3])  # no caption: skipped
    rgb = RGB
    for c in range(a.val_classes):
        name = COLOURS[c % len(COLOURS)] + ("" if c < len(COLOURS) else f"_{c}")
        if a.val_wordnet:
            name = WORDNET_IDS[c]
        os.makedirs(os.path.join(out, "val", name), exist_ok=True)
        for k in range(4):
            px = np.clip(np.array(rgb[COLOURS[c % len(COLOURS)]])[None, None, :] +
                         rng.normal(0, 20, size=(48, 56, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(px).save(os.path.join(out, "val", name, f"{k:02d}.jpg"), quality=90)
    print(f"{a.n} samples, {shards} shards: {out}")


if __name__ == "__main__":
    main()
