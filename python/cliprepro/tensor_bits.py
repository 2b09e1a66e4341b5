"""The log's definitions of a tensor's bits and dtypes (docs/hdf5-layout.md), shared by the reader
and the recorder's writer so both spell them once. `digest` is the reader's check of stored bits
(python-xxhash, XXH3's reference); the recorder digests with cliprepro's own code (native.py),
which tests/python/test_native_digest.py holds equal to it."""
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


def torch_dtype_name(dtype):
    """The log's name of a torch dtype."""
    name = str(dtype).removeprefix("torch.")
    if name not in NUMPY_DTYPES:
        raise ValueError(f"no log dtype for torch {dtype}")
    return name


def as_torch(x):
    """A torch tensor as it is (detached), or a numpy array (bfloat16 as ml_dtypes) as a torch
    tensor with the same bits and shape (0-d stays 0-d)."""
    import torch
    if isinstance(x, torch.Tensor):
        return x.detach()
    a = np.array(x, order="C")  # a copy: numpy arrays are the tests' small inputs
    if a.dtype == BFLOAT16:
        return torch.from_numpy(a.view(np.uint16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def digest(array):
    """XXH3-64 (seed 0) of the elements' bytes in C order, as stored: the log's digest."""
    return xxhash.xxh3_64_intdigest(np.require(array, requirements="C").tobytes())


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
