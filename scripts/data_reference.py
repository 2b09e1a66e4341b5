#!/usr/bin/env python3
"""Builds the real-data parity fixtures at run time (tests/test_real_data.cpp):

  data_reference.py OUT_DIR

Writes random JPEG/PNG images of odd sizes in many encodings, corrupt/truncated files, a CSV
list and WebDataset tar shards under OUT_DIR, and OUT_DIR/reference.h5 with what PIL/torchvision/
OpenCLIP produce for them:
  img{i}/decoded       np.array(Image.open(f).convert('RGB'))                 uint8 (H, W, 3)
  img{i}/train{k}      open_clip image_transform(S, is_train=True)(Image.open(f)) after
                       torch.manual_seed(seed)                                 float32 (3, S, S)
  img{i}/eval{S}       open_clip image_transform(S, is_train=False)(Image.open(f))
  resize{j}/in, /out   Image.resize((w, h), BICUBIC, box) on random RGB arrays
  rrc/params           RandomResizedCrop.get_params after torch.manual_seed(seed): (N, 4)
OUT_DIR/manifest.json describes every case (files, modes, seeds, sizes, expected captions).
"""
import io
import json
import os
import struct
import sys
import tarfile
import zlib

import h5py
import numpy as np
import torch
from PIL import Image
from open_clip.transform import image_transform
from torchvision.transforms import RandomResizedCrop

RNG = np.random.default_rng(1234)


def smooth_noise(h, w, c):
    """Natural-ish content: blurred low-res noise plus fine noise, so JPEG and resampling both
    see gradients and edges."""
    lo = RNG.integers(0, 256, size=(max(h // 7, 2), max(w // 7, 2), c)).astype(np.float64)
    ys = np.linspace(0, lo.shape[0] - 1, h)
    xs = np.linspace(0, lo.shape[1] - 1, w)
    img = lo[np.round(ys).astype(int)][:, np.round(xs).astype(int)]
    img = img * 0.8 + RNG.normal(0, 30, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def png_chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def write_raw_png(path, rows_bytes, w, h, bit_depth, color_type):
    """Minimal PNG writer for encodings PIL cannot save (16-bit RGB, 2-bit grey)."""
    raw = b"".join(b"\x00" + r for r in rows_bytes)
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) +
                png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


def make_images(img_dir):
    """Returns [(name, path)] of valid images."""
    out = []

    def add(name):
        path = os.path.join(img_dir, name)
        out.append((name, path))
        return path

    sizes = [(37, 53), (101, 67), (250, 173), (64, 300), (9, 13)]
    for q in (50, 75, 95):
        for sub, tag in ((2, "420"), (1, "422"), (0, "444")):
            h, w = sizes[(q + sub) % len(sizes)]
            Image.fromarray(smooth_noise(h, w, 3)).save(
                add(f"rgb_q{q}_{tag}.jpg"), quality=q, subsampling=sub)
    Image.fromarray(smooth_noise(211, 157, 3)).save(add("progressive.jpg"), quality=85,
                                                     progressive=True)
    Image.fromarray(smooth_noise(97, 131, 1)[:, :, 0], "L").save(add("gray.jpg"), quality=80)
    Image.fromarray(smooth_noise(45, 77, 4), "CMYK").save(add("cmyk.jpg"), quality=90)

    Image.fromarray(smooth_noise(53, 71, 3)).save(add("rgb.png"))
    Image.fromarray(smooth_noise(131, 89, 4), "RGBA").save(add("rgba.png"))
    a = smooth_noise(61, 43, 4)
    a[..., 3] = np.where(a[..., 3] < 60, 0, np.where(a[..., 3] > 200, 255, a[..., 3]))
    Image.fromarray(a, "RGBA").save(add("rgba_binary_alpha.png"))
    Image.fromarray(smooth_noise(77, 59, 1)[:, :, 0], "L").save(add("gray.png"))
    Image.fromarray(smooth_noise(47, 83, 2), "LA").save(add("gray_alpha.png"))
    Image.fromarray(smooth_noise(90, 120, 3)).quantize(200).save(add("palette.png"))
    Image.fromarray(smooth_noise(33, 51, 3)).quantize(16).save(add("palette4.png"), bits=4)
    Image.fromarray(smooth_noise(40, 70, 1)[:, :, 0], "L").convert("1").save(add("bilevel.png"))
    g16 = (RNG.integers(0, 65536, size=(39, 57))).astype(np.uint16)
    g16[:5] = RNG.integers(0, 300, size=(5, 57))  # values near the I;16 -> L clip
    Image.frombytes("I;16", (57, 39), g16.astype("<u2").tobytes()).save(add("gray16.png"))
    rgb16 = RNG.integers(0, 65536, size=(29, 41, 3)).astype(">u2")
    write_raw_png(add("rgb16.png"), [r.tobytes() for r in rgb16], 41, 29, 16, 2)
    g2 = RNG.integers(0, 4, size=(23, 35)).astype(np.uint8)
    rows = []
    for r in g2:
        padded = np.concatenate([r, np.zeros((-len(r)) % 4, np.uint8)])
        rows.append(bytes((p[0] << 6) | (p[1] << 4) | (p[2] << 2) | p[3] for p in padded.reshape(-1, 4)))
    write_raw_png(add("gray2.png"), rows, 35, 23, 2, 0)
    return out


def make_corrupt(img_dir, src_jpg, src_png):
    cases = []
    jpg = open(src_jpg, "rb").read()
    png = open(src_png, "rb").read()
    for name, data in (
        ("truncated.jpg", jpg[: len(jpg) // 2]),
        ("garbage.jpg", jpg[:2] + b"\xff" + bytes(RNG.integers(0, 256, 200, dtype=np.uint8))),
        ("truncated.png", png[: len(png) // 2]),
        ("badcrc.png", png[:29] + bytes([png[29] ^ 0xFF]) + png[30:]),
        ("notimage.jpg", b"<html>404 not found</html>"),
        ("empty.png", b""),
    ):
        path = os.path.join(img_dir, name)
        with open(path, "wb") as f:
            f.write(data)
        cases.append({"name": name, "path": path})
    return cases


def main():
    out_dir = sys.argv[1]
    img_dir = os.path.join(out_dir, "images")
    os.makedirs(img_dir, exist_ok=True)
    images = make_images(img_dir)
    manifest = {"images": [], "resize": [], "rrc": [], "train_sizes": [32, 224], "eval_sizes": [32, 224]}
    h5 = h5py.File(os.path.join(out_dir, "reference.h5"), "w")

    train_tf = {s: image_transform(s, is_train=True) for s in manifest["train_sizes"]}
    eval_tf = {s: image_transform(s, is_train=False) for s in manifest["eval_sizes"]}
    for i, (name, path) in enumerate(images):
        im = Image.open(path)
        entry = {"name": name, "path": path, "mode": im.mode, "width": im.width,
                 "height": im.height, "train": []}
        h5[f"img{i}/decoded"] = np.array(im.convert("RGB"))
        for k in range(4):
            s = manifest["train_sizes"][k % 2]
            seed = 1000 * i + k
            torch.manual_seed(seed)
            h5[f"img{i}/train{k}"] = train_tf[s](Image.open(path)).numpy()
            entry["train"].append({"seed": seed, "size": s})
        for s in manifest["eval_sizes"]:
            h5[f"img{i}/eval{s}"] = eval_tf[s](Image.open(path)).numpy()
        manifest["images"].append(entry)

    # Direct Image.resize with fractional boxes (up- and downscaling), 1 to 4 bands.
    for j in range(24):
        c = (1, 2, 3, 4)[j % 4]
        mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[c]
        h, w = int(RNG.integers(3, 120)), int(RNG.integers(3, 120))
        arr = smooth_noise(h, w, c)
        im = Image.fromarray(arr[:, :, 0] if c == 1 else arr, mode)
        x0, x1 = sorted(RNG.uniform(0, w, 2))
        y0, y1 = sorted(RNG.uniform(0, h, 2))
        box = (float(x0), float(y0), float(max(x1, x0 + 0.5)), float(max(y1, y0 + 0.5)))
        if j % 3 == 0:
            box = (0.0, 0.0, float(w), float(h))
        ow, oh = int(RNG.integers(1, 150)), int(RNG.integers(1, 150))
        res = np.array(im.resize((ow, oh), Image.BICUBIC, box=box))
        h5[f"resize{j}/in"] = arr
        h5[f"resize{j}/out"] = res.reshape(oh, ow, c)
        manifest["resize"].append({"mode": mode, "box": list(box), "width": ow, "height": oh})

    # RandomResizedCrop.get_params, including shapes that exhaust the 10 tries (centre crop).
    params = []
    for n, (h, w, scale) in enumerate([(224, 224, (0.9, 1.0)), (37, 53, (0.9, 1.0)),
                                        (500, 20, (0.9, 1.0)), (20, 500, (0.9, 1.0)),
                                        (300, 100, (0.08, 1.0)), (1, 1, (0.9, 1.0)),
                                        (480, 640, (0.08, 1.0)), (100, 60, (0.5, 0.6))]):
        for seed in range(25):
            torch.manual_seed(seed)
            i0, j0, hh, ww = RandomResizedCrop.get_params(
                torch.empty(3, h, w), list(scale), [3.0 / 4.0, 4.0 / 3.0])
            params.append([i0, j0, hh, ww])
            manifest["rrc"].append({"height": h, "width": w, "scale": list(scale), "seed": seed})
    h5["rrc/params"] = np.array(params, dtype=np.int64)
    h5.close()

    manifest["corrupt"] = make_corrupt(img_dir, os.path.join(img_dir, "rgb_q75_420.jpg"),
                                       os.path.join(img_dir, "rgb.png"))

    # CSV list (OpenCLIP --csv-img-key filepath --csv-caption-key title, tab separated).
    csv_rows = [(os.path.join("images", n), f"caption {k} of {n}") for k, (n, _) in enumerate(images[:6])]
    csv_rows.append(("images/gray.png", 'with "quotes"\tand a tab'))
    csv_rows.append(("images/rgb.png", ""))  # pandas: NaN -> str() "nan"
    with open(os.path.join(out_dir, "train.csv"), "w") as f:
        f.write("filepath\ttitle\textra\n")
        for p, cap in csv_rows:
            q = '"' + cap.replace('"', '""') + '"' if ('"' in cap or "\t" in cap) else cap
            f.write(f"{p}\t{q}\tx\n")
    with open(os.path.join(out_dir, "missing_column.csv"), "w") as f:
        f.write("filepath\tcaption\nimages/rgb.png\thello\n")
    manifest["csv"] = {"path": os.path.join(out_dir, "train.csv"),
                       "rows": [{"filepath": p, "title": c if c else "nan"} for p, c in csv_rows]}

    # WebDataset shards: 3 shards, a sample without caption, a .png and an upper-case .JPG,
    # a long (pax) member name, and a __meta__ member.
    shards, expected, skipped = [], [], []
    n = 0
    for s in range(3):
        path = os.path.join(out_dir, f"shard-{s:03d}.tar")
        shards.append(path)
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
            def add(member, data):
                ti = tarfile.TarInfo(member)
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
            if s == 0:
                add("__meta__", b"{}")
            for k in range(4):
                name, img_path = images[n % len(images)]
                ext = os.path.splitext(name)[1][1:]
                key = f"{s:03d}{k:04d}"
                if s == 1 and k == 3:
                    key = "sub/" + "x" * 120 + key  # > 100 chars: pax path header
                if s == 2 and k == 0:
                    ext = ext.upper()
                data = open(img_path, "rb").read()
                caption = f"shard {s} sample {k} ({name})"
                add(f"{key}.{ext}", data)
                if s == 1 and k == 1:
                    skipped.append(key)  # no caption
                else:
                    add(f"{key}.txt", caption.encode())
                    add(f"{key}.json", b"{}")
                    expected.append({"key": key, "caption": caption, "image": img_path})
                n += 1
    manifest["wds"] = {"spec": os.path.join(out_dir, "shard-{000..002}.tar"), "samples": expected,
                       "skipped": skipped}
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"wrote {len(images)} images, {len(manifest['resize'])} resize cases, "
          f"{len(params)} crop-param draws to {out_dir}")


if __name__ == "__main__":
    main()
