#!/usr/bin/env python3
"""Runs a benchmark binary once and prints its ratios.

build/tests/bench/bench_logging (default): step time with digests+stats / logging off, full
dumps / off (tiny and RN50), and full-dump write bandwidth / raw sequential write bandwidth.
build/tests/bench/bench_compare: `cliprepro compare` time / `h5diff -d 0` time on the same logs.

    python3 scripts/bench_ratios.py [path/to/bench_logging | path/to/bench_compare]
"""
import json
import subprocess
import sys

binary = sys.argv[1] if len(sys.argv) > 1 else "build/tests/bench/bench_logging"
out = subprocess.run([binary, "--benchmark_format=json"], check=True, capture_output=True, text=True).stdout
runs = {b["name"]: b for b in json.loads(out)["benchmarks"]}


def counter(name, key):
    for n, b in runs.items():
        if n.startswith(name):
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
    print(f"{model:5s} step: off {off*1e3:9.1f} ms | digests+stats {dig*1e3:9.1f} ms "
          f"(overhead {100*(dig/off-1):+.1f} %) | full dumps {full*1e3:9.1f} ms (x{full/off:.2f})")
dump = counter("BM_FullDumpWrite", "MBps")
raw = counter("BM_RawSequentialWrite", "MBps")
print(f"full-dump write {dump:.0f} MB/s vs raw sequential write {raw:.0f} MB/s: {100*dump/raw:.0f} % of raw")
