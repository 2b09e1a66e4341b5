#!/usr/bin/env python3
"""cliprepro against OpenCLIP 3.3.0 on the same data, CPU, fp32, in one command; prints one table.

    scripts/bench_openclip.py [--workers 2] [--loader-workers 0,1,2] [--threads 2] [--reps 3]
        [--run-reps 3] [--tiny-steps 40] [--rn50-batch 8] [--rn50-steps 8] [--profile]

Builds a CSV of 224 x 224 JPEGs in a temp dir (scripts/make_image_text_set.py --size 224), then
(a) loader: images/s of build/tests/bench/bench_loader (RealData + BatchPrefetcher, RN50's
    224 px train transform, BPE tokens) against OpenCLIP's own loader, open_clip_train.data
    .get_data on parse_args of the same flags (--workers W --batch-size B, csv keys), RN50's
    train preprocess and tokenizer, same batches: the first --warmup batches are not timed in
    either; ratio = cliprepro images/s / OpenCLIP images/s;
(b) whole runs, wall clock from launch to exit: `cliprepro run` of the scenario that
    `cliprepro import-openclip -- FLAGS` writes, with [log] digest-every = 1 (digests and
    statistics of every tensor every step) and [determinism] threads = T, against
    `open_clip_train.main FLAGS` (torch.set_num_threads(T)) with logging off, tiny-bpe at
    batch 32 and RN50 at a small batch. FLAGS are the same for both: --precision fp32
    --device cpu --workers W --report-to none --log-every-n-steps 1000000 --save-frequency 0
    --logs none (OpenCLIP 3.3.0 saves the last epoch's checkpoint whenever --logs names a
    directory, --save-frequency 0 or not; cliprepro saves none here). Ratio = OpenCLIP time /
    cliprepro time (> 1: cliprepro faster). Each run's output lines are time-stamped as they
    arrive, giving its phases: launch to the end of step 1, the steady per-step time, and from
    the last step to exit (cliprepro runs without -q for that: its non-tty progress line comes
    every total/10 steps; OpenCLIP's first and last "Train Epoch" lines, whose "Data (t)" is its
    mean wait for the loader). Writing the scenario (import-openclip) is not timed.
Repetitions alternate the two tools in random order; the table shows median (min-max).
--profile adds both tools' phases timed apart (scripts/bench_openclip_profile.py).
"""
import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import bench_openclip_profile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable

OPENCLIP_MAIN = ("import sys, os, torch, open_clip; torch.set_num_threads(int(sys.argv[1])); "
                 "m = sys.argv[2]; m.endswith('.json') and open_clip.add_model_config(m); "
                 "from open_clip_train.main import main; main(sys.argv[3:])")


def openclip_loader(csv, batch, batches, warmup, workers, threads, model):
    """In a fresh process: OpenCLIP's training loader as main.py builds it; prints images/s."""
    import torch
    torch.set_num_threads(threads)
    import open_clip
    from dataclasses import asdict
    from open_clip.transform import PreprocessCfg, image_transform_v2
    from open_clip_train.data import get_data
    from open_clip_train.params import parse_args

    args = parse_args(["--train-data", csv, "--dataset-type", "csv", "--batch-size", str(batch),
                       "--workers", str(workers), "--model", model, "--device", "cpu"])
    args.distributed, args.world_size, args.rank, args.local_rank = False, 1, 0, 0
    cfg = open_clip.get_model_config(model)
    pp = PreprocessCfg(**{**asdict(PreprocessCfg()), "size": cfg["vision_cfg"]["image_size"],
                          **cfg.get("preprocess_cfg", {})})
    preprocess = (image_transform_v2(pp, is_train=True, aug_cfg=args.aug_cfg),
                  image_transform_v2(pp, is_train=False))
    data = get_data(args, preprocess, epoch=0, tokenizer=open_clip.get_tokenizer(model))
    data["train"].set_epoch(0)
    stamps = []
    for i, (images, texts) in enumerate(data["train"].dataloader):
        stamps.append(time.perf_counter())
        if i + 1 == batches:
            break
    assert len(stamps) == batches, f"the epoch holds {len(stamps)} batches, not {batches}"
    rate = (batches - warmup) * batch / (stamps[-1] - stamps[warmup - 1])
    print(json.dumps({"items_per_second": rate, "shape": list(images.shape)}))


def timed(cmd, cwd, env=None):
    """Runs cmd; returns (wall seconds, [(seconds since launch, line)], exit code)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, bufsize=1)
    lines = [(time.perf_counter() - t0, line.rstrip("\n")) for line in p.stdout]
    rc = p.wait()
    wall = time.perf_counter() - t0
    if rc != 0:
        sys.exit(f"failed ({rc}): {' '.join(cmd)}\n" + "\n".join(l for _, l in lines[-30:]))
    return wall, lines, rc


def phases_cliprepro(lines, steps):
    """(launch -> end of step 1, steady s/step, last step -> exit) from the progress lines."""
    pts = [(t, int(m.group(1))) for t, l in lines if (m := re.search(r" step (\d+)/(\d+) ", l))]
    (t1, k1), (tn, kn) = pts[0], pts[-1]
    assert kn == steps, f"last progress line at step {kn}, expected {steps}"
    steady = (tn - t1) / (kn - k1)
    return t1 - (k1 - 1) * steady, steady, tn


def phases_openclip(lines, steps):
    pts = [(t, l) for t, l in lines if "Train Epoch:" in l]
    steady = (pts[-1][0] - pts[0][0]) / (steps - 1)
    m = re.search(r"Data \(t\): ([\d.]+) Batch \(t\): ([\d.]+)", pts[-1][1])
    return pts[0][0], steady, pts[-1][0], float(m.group(1)), float(m.group(2))


def whole_run(tool, label, model, csv, batch, steps, a, tmp, rep, env=None):
    name = f"{label}-{tool}-{rep}"
    flags = ["--model", model, "--train-data", csv, "--dataset-type", "csv", "--batch-size",
             str(batch), "--epochs", "1", "--workers", str(a.workers), "--device", "cpu",
             "--precision", "fp32", "--seed", "0", "--report-to", "none",
             "--log-every-n-steps", "1000000", "--save-frequency", "0", "--logs", "none",
             "--name", name]
    cwd = os.path.join(tmp, name)
    os.makedirs(cwd)
    if tool == "cliprepro":
        scen = os.path.join(cwd, "scenario.toml")
        subprocess.run([a.cliprepro, "import-openclip", "--out", scen, "--", *flags], check=True,
                       capture_output=True)
        with open(scen, "a") as f:
            f.write(f"\n[determinism]\nthreads = {a.threads}\n\n[log]\ndigest-every = 1\n")
        wall, lines, _ = timed([a.cliprepro, "run", scen, "--no-golden", "--out", cwd], cwd, env)
        first, steady, last = phases_cliprepro(lines, steps)
        log = os.path.join(cwd, name + ".h5")
        extra = {"log_mb": os.path.getsize(log) / 1e6}
    else:
        stem = os.path.splitext(os.path.basename(model))[0] if model.endswith(".json") else model
        oc_flags = [f if f != model else stem for f in flags]
        wall, lines, _ = timed([PY, "-c", OPENCLIP_MAIN, str(a.threads), model, *oc_flags], cwd,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
        first, steady, last, data_t, batch_t = phases_openclip(lines, steps)
        extra = {"data_t": data_t, "batch_t": batch_t}
        ckpts = os.path.join(cwd, "none", name, "checkpoints")
        assert not os.listdir(ckpts), "OpenCLIP saved a checkpoint"
    shutil.rmtree(cwd)  # logs and scenario: the next run starts on the same free disk
    return {"wall": wall, "first": first, "steady": steady, "exit": wall - last, **extra}


def loader_ours(a, csv, workers):
    out = subprocess.run([a.bench, "--csv", csv, "--batch", str(a.batch), "--batches",
                          str(a.batches), "--warmup", str(a.warmup), "--workers", str(workers),
                          "--threads", str(a.threads), "--benchmark_format=json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["benchmarks"][0]["items_per_second"]


def loader_theirs(a, csv, workers):
    out = subprocess.run([PY, os.path.abspath(__file__), "--openclip-loader", csv, str(a.batch),
                          str(a.batches), str(a.warmup), str(workers), str(a.threads), "RN50"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["items_per_second"]


def subset(src, dst, rows):
    with open(src) as f:
        lines = f.readlines()
    assert len(lines) > rows, f"{src} has {len(lines) - 1} rows, {rows} needed"
    with open(dst, "w") as f:
        f.writelines(lines[:rows + 1])
    return dst


def cell(xs):
    """median (min-max) of the repetitions."""
    m = statistics.median(xs)
    fmt = (lambda v: f"{v:.0f}") if m >= 100 else (lambda v: f"{v:.3g}")
    return fmt(m) + (f" ({fmt(min(xs))}-{fmt(max(xs))})" if len(xs) > 1 else ""), m


def table(title, rows, note):
    print(f"\n{title}")
    print(f"{'':44s} {'cliprepro':>20s} {'OpenCLIP 3.3.0':>20s} {'ratio':>6s}")
    for what, ours, theirs, ratio in rows:
        o, t = cell(ours) if ours else ("", 0), cell(theirs) if theirs else ("", 0)
        r = ratio(o[1], t[1]) if ours and theirs else None
        print(f"{what:44s} {o[0]:>20s} {t[0]:>20s} " + (f"{r:6.2f}" if r else ""))
    print(note)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--openclip-loader":
        c, b, k, w, nw, th, model = sys.argv[2:9]
        return openclip_loader(c, int(b), int(k), int(w), int(nw), int(th), model)
    if len(sys.argv) > 1 and sys.argv[1] == "--openclip-sample-phases":
        return bench_openclip_profile.openclip_sample_phases(sys.argv[2], int(sys.argv[3]),
                                                             sys.argv[4])
    if len(sys.argv) > 1 and sys.argv[1] == "--openclip-step-phases":
        return bench_openclip_profile.openclip_step_phases(sys.argv[2],
                                                           *map(int, sys.argv[3:6]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cliprepro", default=os.path.join(ROOT, "build", "cliprepro"))
    ap.add_argument("--bench", default=os.path.join(ROOT, "build", "tests", "bench",
                                                    "bench_loader"))
    ap.add_argument("--workers", type=int, default=2, help="--workers of both runs")
    ap.add_argument("--loader-workers", default="0,1,2", help="worker counts of the loader test")
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads of both")
    ap.add_argument("--batch", type=int, default=32, help="loader batch size")
    ap.add_argument("--batches", type=int, default=20, help="loader batches (one epoch)")
    ap.add_argument("--warmup", type=int, default=2, help="loader batches not timed")
    ap.add_argument("--tiny-steps", type=int, default=40, help="tiny-bpe steps at batch 32")
    ap.add_argument("--rn50-batch", type=int, default=8)
    ap.add_argument("--rn50-steps", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3, help="repetitions of the loader test")
    ap.add_argument("--run-reps", type=int, default=3, help="repetitions of the whole runs")
    ap.add_argument("--skip-runs", action="store_true")
    ap.add_argument("--profile", action="store_true",
                    help="also time both tools' loader and training-step phases apart")
    ap.add_argument("--bench-steps", default=os.path.join(ROOT, "build", "tests", "bench",
                                                          "bench_step_phases"))
    ap.add_argument("--keep", help="build the data set here and keep it (default: a temp dir)")
    a = ap.parse_args()
    tmp = a.keep or tempfile.mkdtemp(prefix="cliprepro-bench-openclip-")
    n = max(a.batch * a.batches, 32 * a.tiny_steps, a.rn50_batch * a.rn50_steps)
    try:
        t0 = time.perf_counter()
        subprocess.run([PY, os.path.join(ROOT, "scripts", "make_image_text_set.py"),
                        os.path.join(tmp, "set"), str(n), "--size", "224", "--no-shards"],
                       check=True, capture_output=True)
        full = os.path.join(tmp, "set", "train.csv")
        print(f"data: {n} JPEGs 224x224 in {tmp}/set ({time.perf_counter() - t0:.1f} s)",
              flush=True)
        rows = []
        rng = random.Random(0)
        lcsv = subset(full, os.path.join(tmp, "loader.csv"), a.batch * a.batches)
        for w in [int(x) for x in a.loader_workers.split(",") if x]:
            res = {"ours": [], "theirs": []}
            for _ in range(a.reps):
                for tool in rng.sample(["ours", "theirs"], 2):
                    fn = loader_ours if tool == "ours" else loader_theirs
                    res[tool].append(fn(a, lcsv, w))
            rows.append((f"loader W={w} (img/s)", res["ours"], res["theirs"], lambda o, t: o / t))
            print(f"  loader W={w}: cliprepro {[round(x) for x in res['ours']]} img/s, OpenCLIP "
                  f"{[round(x) for x in res['theirs']]} img/s", flush=True)
        runs = [("tiny-bpe", os.path.join(ROOT, "src", "model", "configs", "tiny-bpe.json"), 32,
                 a.tiny_steps), ("RN50", "RN50", a.rn50_batch, a.rn50_steps)]
        notes = []
        for label, model, batch, steps in ([] if a.skip_runs else runs):
            csv = subset(full, os.path.join(tmp, f"{label}.csv"), batch * steps)
            res = {"cliprepro": [], "openclip": []}
            for rep in range(a.run_reps):
                for tool in rng.sample(["cliprepro", "openclip"], 2):
                    r = whole_run(tool, label, model, csv, batch, steps, a, tmp, rep)
                    res[tool].append(r)
                    print(f"  {label} {tool} rep {rep}: {r['wall']:.2f} s", flush=True)
            for key, what in (("wall", f"run {label} B={batch}, {steps} steps (s)"),
                              ("first", "  launch -> end of step 1 (s)"),
                              ("steady", "  per step, steady (s)"),
                              ("exit", "  last step -> exit (s)")):
                rows.append((what, [r[key] for r in res["cliprepro"]],
                             [r[key] for r in res["openclip"]], lambda o, t: t / o))
            notes.append(f"{label}: OpenCLIP's \"Data (t)\" (mean wait for the loader per step) "
                         f"{cell([r['data_t'] for r in res['openclip']])[0]} s; cliprepro's log "
                         f"{res['cliprepro'][0]['log_mb']:.1f} MB")
        table(f"CPU, fp32, {a.threads} intra-op threads and --workers {a.workers} each (loader: "
              f"W), {os.cpu_count()} cores; median (min-max) of {a.reps} (loader) / {a.run_reps} "
              f"(runs) alternating repetitions; loader: RN50 224 px, batch {a.batch}, "
              f"{a.batches - a.warmup} batches timed", rows,
              "ratio: loader = cliprepro img/s / OpenCLIP img/s; runs = OpenCLIP s / cliprepro s "
              "(> 1: cliprepro faster)\n" + "\n".join(notes))
        if a.profile:
            bench_openclip_profile.profile(a, lcsv, runs, tmp, sys.modules[__name__])
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
