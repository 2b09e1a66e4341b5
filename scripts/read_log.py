#!/usr/bin/env python3
"""Reads a cliprepro HDF5 log with h5py: every dataset, every family, and recomputes the
digest (XXH3-64 of the raw bytes) of every stored full tensor. Exit 1 on a mismatch.

    python3 scripts/read_log.py runs/quickstart.h5

Format 2 (docs/hdf5-layout.md) keeps every tensor's digest rows in one table, /digests; format 1
kept them in each tensor's group. `digest_rows` reads either.
"""
import json
import sys

import h5py
import numpy as np
import xxhash


def attr(obj, name, default=None):
    """A string attribute as str. cliprepro writes fixed-length UTF-8 strings (h5py returns
    bytes for those) since it stopped using the global heap; older logs hold variable-length
    ones (str)."""
    v = obj.attrs.get(name, default)
    return v.decode("utf-8") if isinstance(v, (bytes, np.bytes_)) else v


def raw_row(ds, row):
    """Row `row` of a full dataset as stored. bfloat16 (a 2-byte HDF5 float with 8 exponent
    bits, tagged dtype="bfloat16") is read unconverted as uint16 bits: to get float32 values,
    `(bits.astype(np.uint32) << 16).view(np.float32)`."""
    if attr(ds, "dtype") == "bfloat16":
        out = np.empty(ds.shape[1:], dtype=np.uint16)
        fspace = ds.id.get_space()
        fspace.select_hyperslab((row,) + (0,) * (ds.ndim - 1), (1,) + ds.shape[1:])
        mspace = h5py.h5s.create_simple((1,) + ds.shape[1:])
        ds.id.read(mspace, fspace, out, mtype=ds.id.get_type())  # file type = no conversion
        return out
    return np.ascontiguousarray(ds[row])


def is_tensor(obj, version):
    """Whether a node under /tensors is a tensor's group (not an intermediate group)."""
    if not isinstance(obj, h5py.Group):
        return False
    return "digest" in obj if version == 1 else "series" in obj.attrs


def tensor_names(f, under="tensors"):
    """Names (`family/name`) of the tensors under `under`."""
    version = int(attr(f, "format_version"))
    prefix = under[len("tensors/"):] + "/" if under != "tensors" else ""
    out = []
    f[under].visititems(lambda n, o: out.append(prefix + n) if is_tensor(o, version) else None)
    return out


def digest_rows(f):
    """{tensor name: {step: (order, digest, stats or None)}} for the steps up to /progress."""
    version = int(attr(f, "format_version"))
    last = int(f["progress"][0])
    out = {}
    if version == 1:
        for name in tensor_names(f):
            g = f["tensors/" + name]
            stats = g["stats"][()] if "stats" in g else None
            out[name] = {int(s): (int(o), int(d), None if stats is None else stats[i])
                         for i, (s, o, d) in enumerate(zip(g["steps"][()], g["order"][()],
                                                           g["digest"][()])) if s <= last}
        return out
    by_index = {int(f["tensors/" + n].attrs["series"]): n for n in tensor_names(f)}
    rows = f["digests"][()]  # a numpy structured array: step, series, order, digest[, stats]
    progress = f["progress"][()]
    if len(progress) >= 2:  # [step, rows]: exactly the rows written when /progress was
        assert progress[1] <= len(rows), f"damaged: /progress counts {progress[1]} rows"
        rows = rows[:progress[1]]
    has_stats = "stats" in rows.dtype.names
    for r in rows[rows["step"] <= last]:
        out.setdefault(by_index[int(r["series"])], {})[int(r["step"])] = (
            int(r["order"]), int(r["digest"]), r["stats"] if has_stats else None)
    return out


def main(path):
    families, datasets, checked = {}, 0, 0
    try:
        f = h5py.File(path, "r")
    except OSError:
        # A run killed while writing leaves the file flagged as open for SWMR writing.
        f = h5py.File(path, "r", swmr=True)
    with f:
        assert attr(f, "format") == "cliprepro-log", "not a cliprepro log"
        complete = attr(f, "status") == "complete"
        last = int(f["progress"][0])
        json.loads(attr(f, "resolved_config"))
        json.loads(attr(f, "fingerprint"))

        def visit(name, obj):
            nonlocal datasets
            if isinstance(obj, h5py.Dataset):
                obj[()]  # every dataset must read
                datasets += 1

        f.visititems(visit)
        rows = digest_rows(f)
        for name in tensor_names(f):
            family = name.split("/")[0]
            families[family] = families.get(family, 0) + 1
            g = f["tensors/" + name]
            if "full" not in g:
                continue
            full = g["full"]
            for row, step in enumerate(g["full_steps"][()]):
                step = int(step)
                if step not in rows.get(name, {}) or step > last or row >= full.shape[0]:
                    continue
                got = xxhash.xxh3_64_intdigest(raw_row(full, row).tobytes())
                if got != rows[name][step][1]:
                    raise SystemExit(f"digest mismatch: {name} step {step}")
                checked += 1
    state = "complete" if complete else f"incomplete, last complete step {last}"
    print(f"{path} ({state}): {datasets} datasets read; tensors per family: {families}; "
          f"{checked} stored tensors re-digested, all equal to the logged digests")


if __name__ == "__main__":
    main(sys.argv[1])
