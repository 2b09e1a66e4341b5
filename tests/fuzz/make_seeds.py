"""Writes the fuzz targets' seed corpora (small valid inputs, built at run time, nothing committed).

    python make_seeds.py OUT_DIR SOURCE_DIR

OUT_DIR/<target>/ for scenario, safetensors, torch_zip, tokenizer, image and tar; the log
target's seeds come from the fuzz_log_seed tool (written in today's layout by LogWriter).
"""
import io
import pathlib
import shutil
import sys
import tarfile

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

out, src = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
dirs = {n: out / n for n in ("scenario", "safetensors", "torch_zip", "tokenizer", "image", "tar")}
for d in dirs.values():
    d.mkdir(parents=True, exist_ok=True)

# Scenarios: the shipped ones (every section and key style the parser meets).
for f in sorted((src / "scenarios").rglob("*.toml")):
    shutil.copy(f, dirs["scenario"] / f"{f.parent.name}-{f.name}")

# Checkpoints: a few dtypes and shapes, metadata, a 0-d and an empty tensor.
tensors = {
    "visual.conv1.weight": torch.arange(24, dtype=torch.float32).reshape(2, 3, 2, 2),
    "logit_scale": torch.tensor(2.6592),
    "ln_final.bias": torch.zeros(4, dtype=torch.bfloat16),
    "bn.num_batches_tracked": torch.tensor(7, dtype=torch.int64),
    "empty": torch.zeros(0, 3, dtype=torch.float16),
}
save_file(tensors, str(dirs["safetensors"] / "model.safetensors"), metadata={"step": "4"})
save_file({"w": torch.ones(3)}, str(dirs["safetensors"] / "one.safetensors"))
torch.save(tensors, dirs["torch_zip"] / "bare.pt")
torch.save({"epoch": 1, "state_dict": {"module." + k: v for k, v in tensors.items()}},
           dirs["torch_zip"] / "training.pt")
base = torch.arange(12, dtype=torch.float32)
torch.save({"view": base[2:8].reshape(2, 3), "t": base.reshape(3, 4).t()}, dirs["torch_zip"] / "views.pt")

# Captions: ASCII, HTML entities, mojibake ftfy repairs, CJK, emoji, control characters.
for i, text in enumerate([
        "a photo of a dog", "Tom &amp; Jerry&#39;s  <b>cat</b>", "cafÃ© crÃ¨me", "东京的夜景 🌃",
        "ＦＵＬＬ　ｗｉｄｔｈ", "tab\there\nnew\x00line", "a" * 300]):
    (dirs["tokenizer"] / f"caption{i}.txt").write_bytes(text.encode("utf-8"))

# Images: every PIL mode the decoders map, PNG and JPEG (baseline, progressive, CMYK).
rng = np.random.default_rng(0)
rgb = Image.fromarray(rng.integers(0, 256, (9, 7, 3), dtype=np.uint8), "RGB")
images = {
    "rgb.png": (rgb, {}), "la.png": (rgb.convert("LA"), {}), "rgba.png": (rgb.convert("RGBA"), {}),
    "p.png": (rgb.convert("P"), {}), "l.png": (rgb.convert("L"), {}),
    "i16.png": (Image.fromarray(rng.integers(0, 65536, (5, 4), dtype=np.uint16)), {}),
    "rgb.jpg": (rgb, {"quality": 90}), "progressive.jpg": (rgb, {"progressive": True}),
    "l.jpg": (rgb.convert("L"), {}), "cmyk.jpg": (rgb.convert("CMYK"), {}),
}
for name, (img, kw) in images.items():
    img.save(dirs["image"] / name, **kw)

# Tar shards: webdataset samples (ustar), a GNU long name, a pax header, a directory entry.
def add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))

jpg = (dirs["image"] / "rgb.jpg").read_bytes()
for fmt, name in ((tarfile.USTAR_FORMAT, "ustar.tar"), (tarfile.GNU_FORMAT, "gnu.tar"),
                  (tarfile.PAX_FORMAT, "pax.tar")):
    with tarfile.open(dirs["tar"] / name, "w", format=fmt) as tar:
        tar.addfile(tarfile.TarInfo("dir/") if fmt != tarfile.USTAR_FORMAT else tarfile.TarInfo("d"))
        for key in ("000000", "000001"):
            add(tar, f"{key}.jpg", jpg)
            add(tar, f"{key}.txt", b"a caption")
        if fmt != tarfile.USTAR_FORMAT:
            long_key = "x" * 120
            add(tar, f"{long_key}.png", (dirs["image"] / "rgb.png").read_bytes())
            add(tar, f"{long_key}.txt", "ünïcode".encode())
