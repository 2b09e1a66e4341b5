#!/usr/bin/env python3
"""The recorder's cost: the same OpenCLIP command, plain (`open_clip_train.main`) and recorded
(`python -m cliprepro.record`), in alternating repetitions; prints the steady per-step time of
each and their ratio.

    /opt/cliprepro/venv-torch-2.11.0/bin/python scripts/bench_recorder.py [--cases rn50,rn50-bf16,tiny]
        [--reps 3] [--steps 8] [--threads 2] [--digest-every 1[,N...]] [--workers 0] [--device cpu]

Cases: rn50 (RN50, batch 8, fp32), rn50-bf16 (the same at --precision amp_bf16), tiny (the
tiny-bpe config at batch 32), rn50-amp-b128 (RN50 at OpenCLIP's per-GPU batch 128, --precision
amp: for a GPU, scripts/gpu_check.sh). Data: a CSV of 224 px JPEGs built once in a temp dir
(scripts/make_image_text_set.py). FLAGS, the same for both: --train-data set/train.csv
--dataset-type csv --batch-size B --epochs 1 --workers W --report-to none --save-frequency 0
--logs none --log-every-n-steps 1000000 --seed 0 --precision P --device D. The recorder logs
digests and statistics of every tensor at the steps --digest-every selects (each value given is
its own recorded mode, timed in the same alternation as plain), and stores data/* every step and
params/buffers at step 0, as it always does.

Each run is a child process that registers a global optimizer step post-hook taking a time
stamp (the only thing added to the plain run); the steady per-step time is the median interval
between consecutive optimizer steps after the first two. The table shows median (min-max) over
the repetitions; ratio = recorded / plain (1.05 = 5 % overhead).
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = {"rn50": ("RN50", 8, "fp32"), "rn50-bf16": ("RN50", 8, "amp_bf16"),
         "tiny": (os.path.join(ROOT, "src/model/configs/tiny-bpe.json"), 32, "fp32"),
         "rn50-amp-b128": ("RN50", 128, "amp")}
WARM_STEPS = 2  # allocator, oneDNN primitives, the log's datasets: not steady


def flags(case, steps, data, device, workers):
    model, batch, precision = CASES[case]
    return ["--model", model, "--train-data", os.path.join(data, "train.csv"), "--dataset-type",
            "csv", "--batch-size", str(batch), "--epochs", "1", "--train-num-samples",
            str(batch * steps), "--workers", str(workers), "--report-to", "none", "--save-frequency", "0",
            "--logs", "none", "--log-every-n-steps", "1000000", "--seed", "0", "--lr", "1e-4",
            "--precision", precision, "--device", device]


def child(argv):
    """python bench_recorder.py --child OUT.json plain|record THREADS DIGEST_EVERY LOG -- FLAGS"""
    out, mode, threads, digest_every, log = argv[:5]
    oc_flags = argv[6:]
    import atexit
    import time

    import torch
    from torch.optim.optimizer import register_optimizer_step_post_hook
    stamps = []
    register_optimizer_step_post_hook(
        lambda *_: stamps.append(time.perf_counter()))
    atexit.register(lambda: json.dump(stamps, open(out, "w")))
    torch.set_num_threads(int(threads))
    from cliprepro.record import model_flag
    oc_flags = model_flag(oc_flags)  # a config JSON path registered with OpenCLIP, as recorded
    if mode == "plain":
        import open_clip_train.main as oc_main
        oc_main.main(oc_flags)
        return 0
    from cliprepro.record import main as record_main
    return record_main(["--out", log, "--threads", threads, "--digest-every", digest_every,
                        "--"] + oc_flags)


def steady(stamps):
    gaps = [b - a for a, b in zip(stamps, stamps[1:])][WARM_STEPS - 1:]
    if len(gaps) < 2:
        raise SystemExit(f"only {len(stamps)} steps timed: raise --steps")
    return statistics.median(gaps)


def run(mode, case, a, data, tmp):
    """`mode`: "plain", or the --digest-every of a recorded run."""
    out, log = os.path.join(tmp, "stamps.json"), os.path.join(tmp, "rec.h5")
    for p in (out, log):
        if os.path.exists(p):
            os.remove(p)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", out,
           "plain" if mode == "plain" else "record", str(a.threads),
           "1" if mode == "plain" else mode, log, "--"] + flags(case, a.steps, data, a.device,
                                                                a.workers)
    r = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{mode} {case} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return steady(json.load(open(out)))


def fmt(xs):
    return f"{statistics.median(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})"


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(sys.argv[2:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default="rn50,rn50-bf16,tiny")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--digest-every", default="1",
                   help="comma-separated: one recorded mode per value (e.g. 1,10)")
    p.add_argument("--workers", type=int, default=0, help="OpenCLIP's --workers")
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    every = [str(int(n)) for n in a.digest_every.split(",")]
    cases = a.cases.split(",")
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}: one of {sorted(CASES)}")
    with tempfile.TemporaryDirectory(prefix="bench-recorder-") as tmp:
        data = os.path.join(tmp, "set")
        images = max(CASES[c][1] for c in cases) * a.steps
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/make_image_text_set.py"),
                        data, str(images), "--size", "224", "--no-shards"], check=True,
                       stdout=subprocess.DEVNULL)
        print(f"{'case':<14} {'every':>5} {'plain s/step':>24} {'recorded s/step':>24} "
              f"{'ratio':>22}")
        for case in cases:
            modes = ["plain"] + every
            times = {m: [] for m in modes}
            ratios = {m: [] for m in every}
            for _ in range(a.reps):
                order = list(modes)
                random.shuffle(order)
                got = {m: run(m, case, a, data, tmp) for m in order}
                for m in modes:
                    times[m].append(got[m])
                for m in every:
                    ratios[m].append(got[m] / got["plain"])
            for m in every:
                print(f"{case:<14} {m:>5} {fmt(times['plain']):>24} {fmt(times[m]):>24} "
                      f"{fmt(ratios[m]):>22}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
