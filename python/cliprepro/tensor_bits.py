"""The log's definitions of a tensor's bits, digest and statistics (docs/hdf5-layout.md), shared by
the reader and the recorder's writer so both spell them once."""
import h5py
import ml_dtypes
import numpy as np
import xxhash

STATS_COLUMNS = "min,max,mean,std,l2,nan,inf,zero"
BFLOAT16 = np.dtype(ml_dtypes.bfloat16)

# Log dtype names (the `dtype` attribute) <-> numpy dtypes of the stored bits.
NUMPY_DTYPES = {"float32": np.dtype("<f4"), "float64": np.dtype("<f8"), "float16": np.dtype("<f2"),
                "bfloat16": BFLOAT16, "int64": np.dtype("<i8"), "int32": np.dtype("<i4"),
                "uint8": np.dtype("u1")}


def dtype_name(array):
    """The log's name of an array's dtype."""
    for name, dtype in NUMPY_DTYPES.items():
        if array.dtype == dtype:
            return name
    raise ValueError(f"no log dtype for numpy {array.dtype}")


def digest(array):
    """XXH3-64 (seed 0) of the elements' bytes in C order, as stored: the log's digest."""
    return xxhash.xxh3_64_intdigest(np.require(array, requirements="C").tobytes())


def stats(array):
    """min, max, mean, std (population), L2 norm over the finite elements in float64; then the NaN,
    Inf and zero counts (STATS_COLUMNS). cliprepro sums float32 blocks in float before merging in
    float64, so its statistics can differ from these in the last bits; digests never do."""
    a = np.asarray(array)
    if a.dtype == BFLOAT16:
        a = a.astype(np.float32)
    a = a.astype(np.float64, copy=False).ravel()
    finite = np.isfinite(a)
    if finite.all():  # the usual case: no masks to apply
        f, nan, inf = a, 0.0, 0.0
    else:
        nan = float(np.count_nonzero(np.isnan(a)))
        inf = float(a.size - np.count_nonzero(finite)) - nan
        f = a[finite]
    zero = float(a.size - np.count_nonzero(a))
    if f.size == 0:
        return np.array([np.nan] * 5 + [nan, inf, zero])
    mean = f.sum() / f.size
    centred = f - mean
    return np.array([f.min(), f.max(), mean, np.sqrt(np.dot(centred, centred) / f.size),
                     np.sqrt(np.dot(f, f)), nan, inf, zero])


def bfloat16_file_type():
    """The 2-byte HDF5 float cliprepro writes bfloat16 as: sign bit 15, exponent bits 7-14 (bias
    127), mantissa bits 0-6 (harness/log/h5_types.cpp)."""
    t = h5py.h5t.IEEE_F32LE.copy()
    t.set_fields(15, 7, 8, 0, 7)
    t.set_size(2)
    t.set_ebias(127)
    return t


def read_raw(ds, selection):
    """Rows `selection` (an int or a slice of the first axis) of a full dataset with the stored
    bits: bfloat16 is read without conversion (h5py would convert it to a native float type) and viewed
    as ml_dtypes.bfloat16."""
    name = ds.attrs.get("dtype", b"")
    name = name.decode() if isinstance(name, bytes) else name
    if name != "bfloat16":
        return np.require(ds[selection], requirements="C")  # keeps 0-d
    rows = range(ds.shape[0])[selection]
    single = isinstance(rows, int)
    first, count = (rows, 1) if single else (rows.start, len(rows))
    if not single and rows.step != 1:
        raise ValueError("bfloat16 rows are read as one contiguous range")
    out = np.empty((count,) + ds.shape[1:], dtype=np.uint16)
    if count:
        fspace = ds.id.get_space()
        fspace.select_hyperslab((first,) + (0,) * (ds.ndim - 1), (count,) + ds.shape[1:])
        mspace = h5py.h5s.create_simple(out.shape)
        ds.id.read(mspace, fspace, out, mtype=ds.id.get_type())  # file type = no conversion
    out = out.view(BFLOAT16)
    return out[0] if single else out
