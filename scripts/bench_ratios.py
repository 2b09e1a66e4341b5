#!/usr/bin/env python3
"""Runs a benchmark binary once and prints its ratios.

build/tests/bench/bench_logging (default): step time with digests+stats / logging off, full
dumps / off (tiny and RN50), and full-dump write bandwidth / raw sequential write bandwidth.
Each benchmark runs REPS times (default 3), in random interleaved order so that drifts of a
shared machine hit every mode alike; the ratios are of the medians.
build/tests/bench/bench_compare: `cliprepro compare` time / `h5diff -d 0` time on the same logs.

    python3 scripts/bench_ratios.py [path/to/bench_logging [REPS] | path/to/bench_compare]
"""
import json
import subprocess
import sys

binary = sys.argv[1] if len(sys.argv) > 1 else "build/tests/bench/bench_logging"
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
args = [binary, "--benchmark_format=json"]
if "bench_logging" in binary and reps > 1:
    args += [f"--benchmark_repetitions={reps}", "--benchmark_enable_random_interleaving=true",
             "--benchmark_report_aggregates_only=true"]
out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
runs = [b for b in json.loads(out)["benchmarks"]]


def counter(name, key):
    """The median over repetitions where there are several, else the single run."""
    for b in runs:
        if b["run_name"].startswith(name) and b.get("aggregate_name", "median") == "median":
            return b[key]
    raise KeyError(name)


if "bench_compare" in binary:
    for arg, what in ((0, "identical logs"), (1, "every value differs")):
        ours = counter(f"BM_Compare/{arg}", "real_time")
        theirs = counter(f"BM_H5diff/{arg}", "real_time")
        print(f"{what:20s}: cliprepro compare {ours:9.0f} ms | h5diff -d 0 {theirs:9.0f} ms | "
              f"compare takes {ours/theirs:.3f}x h5diff's time ({theirs/ours:.1f}x faster)")
    sys.exit(0)

for model in ("Tiny", "RN50"):
    off = counter(f"BM_Step{model}/0", "step_s")
    dig = counter(f"BM_Step{model}/1", "step_s")
    full = counter(f"BM_Step{model}/2", "step_s")
    cap = counter(f"BM_Step{model}/3", "step_s")
    hash_s = counter(f"BM_Step{model}/1", "hash_s")
    io_s = counter(f"BM_Step{model}/1", "io_s")
    io_cpu_s = counter(f"BM_Step{model}/1", "io_cpu_s")
    print(f"{model:5s} step: off {off*1e3:9.1f} ms | digests+stats {dig*1e3:9.1f} ms "
          f"(overhead {100*(dig/off-1):+.1f} %) | full dumps {full*1e3:9.1f} ms (x{full/off:.2f})")
    print(f"      digests+stats: capture only {100*(cap/off-1):+.1f} % | hashing on the training "
          f"thread {hash_s*1e3:.1f} ms/step | writer thread (concurrent) {io_s*1e3:.1f} ms/step "
          f"wall, {io_cpu_s*1e3:.1f} ms/step CPU")
dump = counter("BM_FullDumpWrite", "MBps")
raw = counter("BM_RawSequentialWrite", "MBps")
print(f"full-dump write {dump:.0f} MB/s vs raw sequential write {raw:.0f} MB/s: {100*dump/raw:.0f} % of raw")
