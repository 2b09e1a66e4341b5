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


def raw_row(ds, row):
    """Row `row` of a full dataset as stored. bfloat16 (a 2-byte HDF5 float with 8 exponent
    bits, tagged dtype="bfloat16") is read unconverted as uint16 bits: to get float32 values,
    `(bits.astype(np.uint32) << 16).view(np.float32)`."""
    if ds.attrs.get("dtype") == "bfloat16":
        out = np.empty(ds.shape[1:], dtype=np.uint16)
        fspace = ds.id.get_space()
        fspace.select_hyperslab((row,) + (0,) * (ds.ndim - 1), (1,) + ds.shape[1:])
        mspace = h5py.h5s.create_simple((1,) + ds.shape[1:])
        ds.id.read(mspace, fspace, out, mtype=ds.id.get_type())  # file type = no conversion
        return out
    return np.ascontiguousarray(ds[row])


def main(path):
    families, datasets, checked = {}, 0, 0
    try:
        f = h5py.File(path, "r")
    except OSError:
        # A run killed while writing leaves the file flagged as open for SWMR writing.
        f = h5py.File(path, "r", swmr=True)
    with f:
        assert f.attrs["format"] == "cliprepro-log", "not a cliprepro log"
        complete = f.attrs["status"] == "complete"
        last = int(f["progress"][0])
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
            full = obj["full"]
            for row, step in enumerate(obj["full_steps"][()]):
                if step not in digest or (not complete and step > last) or row >= full.shape[0]:
                    continue
                bits = raw_row(full, row)
                got = xxhash.xxh3_64_intdigest(bits.tobytes())
                if got != int(digest[step]):
                    raise SystemExit(f"digest mismatch: {name} step {step}")
                checked += 1

        f["tensors"].visititems(visit)
    state = "complete" if complete else f"incomplete, last complete step {last}"
    print(f"{path} ({state}): {datasets} datasets read; tensors per family: {families}; "
          f"{checked} stored tensors re-digested, all equal to the logged digests")


if __name__ == "__main__":
    main(sys.argv[1])
