#!/usr/bin/env python3
"""Reads a cliprepro HDF5 log with h5py: every dataset, every family, and recomputes the
digest (XXH3-64 of the raw bytes) of every stored full tensor. Exit 1 on a mismatch.

    python3 scripts/read_log.py runs/quickstart.h5
"""
import json
import sys

import h5py
import numpy as np
import xxhash


def main(path):
    families, datasets, checked = {}, 0, 0
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "cliprepro-log", "not a cliprepro log"
        json.loads(f.attrs["resolved_config"])
        json.loads(f.attrs["fingerprint"])

        def visit(name, obj):
            nonlocal datasets, checked
            if isinstance(obj, h5py.Dataset):
                obj[()]  # every dataset must read
                datasets += 1
                return
            if "digest" not in obj:
                return
            families[name.split("/")[0]] = families.get(name.split("/")[0], 0) + 1
            if "full" not in obj:
                return
            digest = dict(zip(obj["steps"][()], obj["digest"][()]))
            for row, step in enumerate(obj["full_steps"][()]):
                if step not in digest:
                    continue
                bits = np.ascontiguousarray(obj["full"][row])
                got = xxhash.xxh3_64_intdigest(bits.tobytes())
                if got != int(digest[step]):
                    raise SystemExit(f"digest mismatch: {name} step {step}")
                checked += 1

        f["tensors"].visititems(visit)
    print(f"{path}: {datasets} datasets read; tensors per family: {families}; "
          f"{checked} stored tensors re-digested, all equal to the logged digests")


if __name__ == "__main__":
    main(sys.argv[1])
