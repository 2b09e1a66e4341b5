"""Profile half of scripts/bench_openclip.py (--profile): both tools' phases timed apart.

- one loader sample on one thread: build/tests/bench/bench_loader's BM_SamplePhases against
  OpenCLIP's CsvDataset.__getitem__ steps (PIL open + load, RandomResizedCrop, ToTensor,
  Normalize, tokenizer), ms per sample;
- one training step on random inputs: build/tests/bench/bench_step_phases (zero_grad, forward,
  loss, backward, AdamW; the trainer's whole step with logging off and with digests) against
  OpenCLIP's train_one_epoch step in PyTorch eager, s per step;
- startup: `import open_clip`, which cliprepro runs to find the BPE vocabulary, and a tiny-bpe
  `cliprepro run` with $CLIPREPRO_BPE_VOCAB set (no `import open_clip`) against the plain one.
"""
import json
import math
import os
import subprocess
import sys
import time

PY = sys.executable
HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_openclip.py")


def openclip_sample_phases(csv, rows, model):
    """One thread: OpenCLIP's per-sample steps (CsvDataset.__getitem__) timed apart, ms/sample."""
    import io
    import torch
    torch.set_num_threads(1)
    import open_clip
    from PIL import Image
    from open_clip.transform import PreprocessCfg, image_transform_v2
    pre = image_transform_v2(PreprocessCfg(size=open_clip.get_model_config(model)["vision_cfg"]
                                           ["image_size"]), is_train=True, aug_cfg={})
    rrc, to_rgb, to_tensor, normalize = pre.transforms
    tok = open_clip.get_tokenizer(model)
    with open(csv) as f:
        samples = [line.rstrip("\n").split("\t") for line in f.readlines()[1:rows + 1]]
    sec = [0.0] * 6
    for path, caption in samples:
        t = [time.perf_counter()]
        with open(path, "rb") as f:
            data = f.read()
        t.append(time.perf_counter())
        img = Image.open(io.BytesIO(data))
        img.load()
        t.append(time.perf_counter())
        x = rrc(img)
        t.append(time.perf_counter())
        x = to_tensor(to_rgb(x))
        t.append(time.perf_counter())
        x = normalize(x)
        t.append(time.perf_counter())
        tok([str(caption)])
        t.append(time.perf_counter())
        for k in range(6):
            sec[k] += t[k + 1] - t[k]
    names = ["read", "decode", "crop+resize", "to_tensor", "normalize", "tokenize"]
    print(json.dumps({n: 1e3 * v / len(samples) for n, v in zip(names, sec)}))


def openclip_step_phases(model, batch, steps, threads):
    """OpenCLIP's fp32 training step (train_one_epoch, accum 1, main.py's AdamW groups) on
    random images and tokens, phases timed apart: seconds per step, the first step not timed."""
    import torch
    torch.set_num_threads(threads)
    import open_clip
    from open_clip_train.params import parse_args
    if model.endswith(".json"):
        open_clip.add_model_config(model)
        model = os.path.splitext(os.path.basename(model))[0]
    args = parse_args(["--model", model])
    torch.manual_seed(0)
    net, _, _ = open_clip.create_model_and_transforms(model, precision="fp32", device="cpu",
                                                       output_dict=True)
    net.train()
    named = list(net.named_parameters())
    excl = [p for n, p in named if p.ndim < 2 or any(k in n for k in ("bn", "ln", "bias",
                                                                          "logit_scale"))]
    rest = [p for n, p in named if not any(p is q for q in excl)]
    opt = torch.optim.AdamW([{"params": excl, "weight_decay": 0.0},
                             {"params": rest, "weight_decay": args.wd}], lr=args.lr,
                            betas=(args.beta1, args.beta2), eps=args.eps)
    loss = open_clip.ClipLoss()
    cfg = open_clip.get_model_config(model)
    size, ctx = cfg["vision_cfg"]["image_size"], cfg["text_cfg"].get("context_length", 77)
    images = torch.randn(batch, 3, size, size)
    tokens = torch.randint(0, cfg["text_cfg"].get("vocab_size", 49408), (batch, ctx))
    sec = [0.0] * 5
    for s in range(steps + 1):
        t = [time.perf_counter()]
        opt.zero_grad()
        t.append(time.perf_counter())
        out = net(images, tokens)
        t.append(time.perf_counter())
        total = sum(loss(**out, output_dict=True).values())
        t.append(time.perf_counter())
        total.backward()
        t.append(time.perf_counter())
        opt.step()
        with torch.no_grad():
            net.logit_scale.clamp_(0, math.log(100))
        t.append(time.perf_counter())
        for k in range(5):
            sec[k] += (t[k + 1] - t[k]) if s > 0 else 0.0
    names = ["zero_grad", "forward", "loss", "backward", "optimizer"]
    print(json.dumps({n: v / steps for n, v in zip(names, sec)}))


def json_bench(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return {b["name"]: b for b in json.loads(out)["benchmarks"]}


def json_py(*args):
    out = subprocess.run([PY, HERE, *map(str, args)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def profile(a, lcsv, runs, tmp, main_script):
    """Per-phase timings of both tools: one loader sample on one thread, one training step, and
    startup. main_script: scripts/bench_openclip.py (its table, timed, whole_run, subset)."""
    inv = lambda o, t: t / o  # noqa: E731  (times: > 1 = cliprepro faster)
    b = json_bench([a.bench, "--csv", lcsv, "--batch", str(a.batch), "--batches",
                    str(a.batches), "--warmup", str(a.warmup), "--workers", "",
                    "--benchmark_filter=SamplePhases", "--benchmark_format=json"])
    o = b["BM_SamplePhases/iterations:%d/real_time" % (a.batches - a.warmup)]
    t = json_py("--openclip-sample-phases", lcsv, a.batch * (a.batches - a.warmup), "RN50")
    rows = [(what, [sum(o[k] for k in ok)], [sum(t[k] for k in tk)], inv) for what, ok, tk in (
        ("read the file", ["read_ms"], ["read"]), ("decode", ["decode_ms"], ["decode"]),
        ("crop + bicubic resize", ["crop_params_ms", "crop_resize_ms"], ["crop+resize"]),
        ("to tensor + normalize (+ copy)", ["normalize_ms", "copy_ms"], ["to_tensor", "normalize"]),
        ("tokenize", ["tokenize_ms"], ["tokenize"]))]
    total = (sum(r[1][0] for r in rows), sum(r[2][0] for r in rows))
    rows.append(("sum", [total[0]], [total[1]], inv))
    main_script.table("profile: one loader sample on one thread (RN50 224 px train transform), "
                      "ms/sample", rows,
                      "OpenCLIP's DataLoader adds collation and the worker-to-main transfer.")
    for label, model, batch, _ in runs:
        name = "tiny-bpe" if label == "tiny-bpe" else model
        steps = 10 if label == "tiny-bpe" else 3
        b = json_bench([a.bench_steps, "--model", name, "--batch", str(batch), "--steps",
                        str(steps), "--threads", str(a.threads), "--benchmark_format=json"])
        o = next(v for k, v in b.items() if k.startswith("BM_StepPhases/"))
        t = json_py("--openclip-step-phases", model, batch, steps, a.threads)
        rows = [(ph, [o[ph + "_s"]], [t[ph]], inv) for ph in
                ("zero_grad", "forward", "loss", "backward", "optimizer")]
        rows.append(("sum", [sum(o[p + "_s"] for p in t)], [sum(t.values())], inv))
        for mode, what in ((0, "cliprepro train_step, logging off"),
                           (2, "cliprepro train_step, digests every step")):
            v = next(v for k, v in b.items() if k.startswith("BM_TrainStep/") and
                     f"mode:{mode}/" in k)
            rows.append((what, [v["step_s"]], None, None))
        main_script.table(f"profile: one {label} training step at batch {batch}, random inputs, "
                          f"s/step (mean of {steps}, after one untimed)", rows, "")
    bpe = [main_script.timed([PY, "-c", "import open_clip"], tmp)[0] for _ in range(2)]
    vocab = subprocess.run([PY, "-c", "import open_clip, os; print(os.path.join(os.path.dirname("
                            "open_clip.__file__), 'bpe_simple_vocab_16e6.txt.gz'))"], check=True,
                           capture_output=True, text=True).stdout.strip()
    label, model, batch, steps = runs[0]
    csv = main_script.subset(os.path.join(tmp, "set", "train.csv"),
                             os.path.join(tmp, "startup.csv"), batch * steps)
    res = {"plain": [], "vocab": []}
    for rep in range(2):
        for kind in ("plain", "vocab"):
            env = {**os.environ, "CLIPREPRO_BPE_VOCAB": vocab} if kind == "vocab" else None
            res[kind].append(main_script.whole_run("cliprepro", f"startup-{kind}", model, csv,
                                                   batch, steps, a, tmp, rep, env))
    rows = [("`import open_clip`", bpe, None, None)]
    for key, what in (("wall", f"cliprepro run {label}: whole run"),
                      ("first", "  launch -> end of step 1")):
        rows.append((what, [r[key] for r in res["plain"]], None, None))
        rows.append((what.replace("cliprepro run " + label, "same") + ", BPE vocab given",
                     [r[key] for r in res["vocab"]], None, None))
    main_script.table("profile: startup (s)", rows,
                      "cliprepro asks the project Python (`import open_clip`) for open_clip's "
                      "bpe_simple_vocab_16e6.txt.gz unless $CLIPREPRO_BPE_VOCAB names it; OpenCLIP "
                      "imports open_clip (and torch, torchvision) itself.")
