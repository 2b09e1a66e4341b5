"""Reads a cliprepro HDF5 log (format 1 or 2, docs/hdf5-layout.md) without losing a bit:

    from cliprepro import Log
    with Log("runs/quickstart.h5") as log:
        log.names("params/*")                      # tensor names, in the log's series order
        rows = log.digests("params/logit_scale")   # numpy structured array: step, order, digest, stats
        w = log.tensor("params/text_projection", step=1)            # numpy; bfloat16 as ml_dtypes
        t = log.tensor("params/text_projection", step=1, torch=True)  # or a torch tensor

Only the rows `/progress` vouches for are read, so a log of a killed run reads up to its last
complete step. A file it cannot read (missing, not HDF5, damaged) raises LogError naming the file.
"""
import fnmatch
import functools
import json
import os
import stat

import h5py
import numpy as np

from .h5_native import libhdf5
from .tensor_bits import NUMPY_DTYPES, digest, read_raw

DIGEST_FIELDS = [("step", "<i8"), ("order", "<i4"), ("digest", "<u8"), ("stats", "<f8", (8,))]
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# What h5py and numpy raise on a damaged file: libhdf5's errors arrive as OSError, RuntimeError,
# KeyError or ValueError (UnicodeDecodeError and json's errors are ValueErrors too); structures
# that no longer fit one another as TypeError or IndexError.
DAMAGE = (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError)
# libhdf5 retries a metadata read whose checksum fails 100 times for a SWMR reader, sleeping
# longer each time (a writer may be mid-flush): one damaged superblock took over 5 minutes. A few
# attempts still ride out a live writer's flush (as harness/log/log_reader.cpp does).
SWMR_READ_ATTEMPTS = 4
# Deflate, the only filter cliprepro's writers use, expands data at most ~1032-fold: a dataset
# claiming more than this many bytes per byte of file has a damaged dataspace.
MAX_EXPANSION = 1100


class LogError(Exception):
    """A file that is not a readable cliprepro log (missing, not HDF5, damaged), or a tensor/step
    it does not hold. The message names the file."""


def one_line(error):
    """An exception's message on one line (a KeyError's without the quotes str() adds)."""
    text = error.args[0] if isinstance(error, KeyError) and error.args else error
    return " ".join(str(text).split())


def decode(value):
    """A string attribute as str: cliprepro writes fixed-length UTF-8 (h5py returns bytes); logs
    written before 2026-12 hold variable-length strings (str)."""
    return value.decode("utf-8") if isinstance(value, (bytes, np.bytes_)) else value


def reads(method):
    """A Log method whose h5py/numpy errors on a damaged file become a LogError naming the file
    and what was being read (a LogError passes as it is)."""
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except DAMAGE as e:
            what = " ".join([method.__name__.strip("_").replace("_", " "), *map(str, args)])
            raise LogError(f"{self.path}: damaged or unreadable log ({what}): "
                           f"{one_line(e)}") from e
    return guarded


def superblock(path):
    """The file's superblock, checked before libhdf5 follows its addresses: (the file's size, the
    file consistency flags; None before superblock version 2)."""
    try:
        # O_NONBLOCK: a FIFO would otherwise block the open until a writer comes.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise LogError(f"{path}: cannot open ({e.strerror or e})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LogError(f"{path}: not a regular file (a FIFO, directory or device)")
    with os.fdopen(fd, "rb") as f:
        head, size = f.read(48), os.fstat(fd).st_size
    if not head.startswith(HDF5_SIGNATURE):
        raise LogError(f"{path}: not an HDF5 file (no HDF5 signature at its start)")
    if len(head) < 48 or head[8] not in (0, 1, 2, 3):
        raise LogError(f"{path}: damaged or truncated HDF5 superblock")
    if head[8] < 2:
        return size, None
    # Version 2/3 (cliprepro writes 3): sizes of offsets and lengths, flags, then four addresses.
    if head[9] != 8 or head[10] != 8:
        raise LogError(f"{path}: damaged HDF5 superblock (sizes of offsets and lengths "
                       f"{head[9]} and {head[10]}, not 8)")
    base, _extension, eof, root = (int.from_bytes(head[i:i + 8], "little")
                                   for i in (12, 20, 28, 36))
    # A SWMR writer's end-of-file address may run ahead of what reached the disk (libhdf5 skips
    # that check for such files too).
    eof_ok = eof <= size or head[11] & 0x05
    if base != 0 or not eof_ok or root >= size:
        raise LogError(f"{path}: damaged or truncated HDF5 superblock (base address {base}, "
                       f"end-of-file address {eof}, root group at {root}; the file has {size} "
                       "bytes)")
    return size, head[11]


def open_h5(path):
    """`path` opened read-only with h5py; a killed writer's file in SWMR-read mode."""
    size, flags = superblock(path)
    try:
        return h5py.File(path, "r"), size
    except OSError as e:
        error = e
    # A run killed while writing leaves the flags saying the file is open for (SWMR) writing.
    if flags is not None and flags & 0x05:
        fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
        if libhdf5().H5Pset_metadata_read_attempts(fapl.id, SWMR_READ_ATTEMPTS) < 0:
            raise RuntimeError("H5Pset_metadata_read_attempts failed")
        try:
            fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ,
                                fapl)
            return h5py.File(fid), size
        except OSError as e:
            error = e
    raise LogError(f"{path}: damaged or not a readable HDF5 file ({one_line(error)})") from None


class Log:
    def __init__(self, path):
        self.path = str(path)
        self.file, self.file_size = open_h5(self.path)
        try:
            self._tensor_index()
        except BaseException:
            # No file left open inside libhdf5: a later file at the same inode would be read
            # through its cached metadata.
            self.close()
            raise

    @reads
    def _tensor_index(self):
        f = self.file
        if self.attr("format") != "cliprepro-log":
            raise LogError(f"{self.path}: not a cliprepro log (no format = cliprepro-log)")
        version = self.format_version = int(self.attr("format_version"))
        if version not in (1, 2):
            raise LogError(f"{self.path}: log format version {version}; this reader reads 1 and 2")
        progress = self._read(f["progress"])
        self.last_step = int(progress[0])
        # Every group's name first, then their contents: nothing raised inside libhdf5's visit.
        names = []
        f["tensors"].visit(names.append)
        self._groups = {}
        for name in names:
            g = f["tensors"][name]
            if isinstance(g, h5py.Group) and (
                    "digest" in g if version == 1 else "series" in g.attrs):
                self._groups[name] = g
        if version == 1:
            self._names = sorted(self._groups)
            self._rows = None
        else:
            by_series = {int(g.attrs["series"]): n for n, g in self._groups.items()}
            if len(by_series) != len(self._groups):
                raise LogError(f"{self.path}: damaged: two tensors share a series number")
            self._names = [by_series[k] for k in sorted(by_series)]
            rows = self._read(f["digests"])
            if len(progress) >= 2:  # [step, rows]: exactly the rows written when /progress was
                if not 0 <= progress[1] <= len(rows):
                    raise LogError(f"{self.path}: damaged: /progress counts {progress[1]} rows "
                                   f"of {len(rows)}")
                rows = rows[:progress[1]]
            self._rows = rows[rows["step"] <= self.last_step]

    def _read(self, ds, row=None):
        """A dataset (or one row of a full one, bits as stored), after checking its claimed size
        fits the file: a damaged dataspace must not become a huge allocation."""
        claimed = (ds.size or 0) * ds.id.get_type().get_size()
        if claimed > MAX_EXPANSION * self.file_size + (1 << 20):
            raise LogError(f"{self.path}: damaged: {ds.name} claims {claimed} bytes, more than "
                           f"a file of {self.file_size} bytes can hold")
        try:
            return ds[()] if row is None else read_raw(ds, row)
        except DAMAGE as e:
            raise LogError(f"{self.path}: cannot read {ds.name}: {one_line(e)}") from e

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.file.close()

    @reads
    def attr(self, name, default=""):
        return decode(self.file.attrs.get(name, default))

    @property
    def complete(self):
        return self.attr("status") == "complete"

    @property
    @reads
    def config(self):
        """The resolved configuration (JSON) the run was made with."""
        return json.loads(self.attr("resolved_config", "{}"))

    @property
    @reads
    def fingerprint(self):
        return json.loads(self.attr("fingerprint", "{}"))

    def names(self, pattern="*"):
        """Tensor names matching a glob (`*` also matches across `/`), in series order."""
        return [n for n in self._names if fnmatch.fnmatchcase(n, pattern)]

    def _group(self, name):
        g = self._groups.get(name)
        if g is None:
            raise LogError(f"{self.path}: no tensor {name}")
        return g

    @reads
    def info(self, name):
        """dtype (log name), shape and phase of a tensor."""
        g = self._group(name)
        shape = g.attrs["shape"]  # h5py.Empty for a 0-d tensor (a null dataspace)
        return {"dtype": decode(g.attrs["dtype"]),
                "shape": () if isinstance(shape, h5py.Empty) else tuple(int(d) for d in shape),
                "phase": decode(g.attrs["phase"])}

    @reads
    def digests(self, name):
        """The tensor's digest rows up to the last complete step: a numpy structured array with
        fields step, order, digest and stats (8 columns, `stats_columns`; NaN where the log keeps
        digests only, as goldens do)."""
        g = self._group(name)
        if self._rows is None:  # format 1: per-group datasets
            steps = self._read(g["steps"])
            out = np.zeros(len(steps), DIGEST_FIELDS)
            out["step"], out["order"] = steps, self._read(g["order"])
            out["digest"] = self._read(g["digest"])
            out["stats"] = self._read(g["stats"]) if "stats" in g else np.nan
            return out[out["step"] <= self.last_step]
        mine = self._rows[self._rows["series"] == int(g.attrs["series"])]
        out = np.zeros(len(mine), DIGEST_FIELDS)
        for field in ("step", "order", "digest"):
            out[field] = mine[field]
        out["stats"] = mine["stats"] if "stats" in mine.dtype.names else np.nan
        return out

    @reads
    def full_steps(self, name):
        """Steps at which the tensor is stored in full (up to the last complete step)."""
        g = self._group(name)
        if "full_steps" not in g:
            return np.zeros(0, np.int64)
        steps = self._read(g["full_steps"])[:g["full"].shape[0]]
        return steps[steps <= self.last_step]

    @reads
    def tensor(self, name, step, torch=False):
        """The full tensor at `step` with its stored bits: numpy (bfloat16 as ml_dtypes.bfloat16)
        or, with torch=True, a torch tensor of the logged dtype."""
        steps = list(self.full_steps(name))
        if step not in steps:
            raise LogError(f"{self.path}: no full {name} at step {step} (full at steps "
                           f"{steps or 'none'}: add it to [log] full-tensors / full-steps)")
        g = self._group(name)
        array = self._read(g["full"], steps.index(step))
        want = NUMPY_DTYPES.get(decode(g.attrs["dtype"]))
        if want is not None and array.dtype != want:
            raise LogError(f"{self.path}: {name} stored as {array.dtype}, attribute says {want}")
        return as_torch(array) if torch else array

    def sample_keys(self, step):
        """The WebDataset `__key__` of each sample of `step`, as strings (data/sample_keys of a
        recording of OpenCLIP's WebDataset pipeline: UTF-8 rows, NUL-padded)."""
        return [bytes(row).rstrip(b"\0").decode("utf-8")
                for row in self.tensor("data/sample_keys", step)]

    @reads
    def verify(self):
        """(name, step) of every stored full tensor whose bits do not hash to its logged digest."""
        bad = []
        for name in self._names:
            logged = {int(r["step"]): int(r["digest"]) for r in self.digests(name)}
            for step in self.full_steps(name):
                step = int(step)
                if step in logged and digest(self.tensor(name, step)) != logged[step]:
                    bad.append((name, step))
        return bad

    @reads
    def read_every_dataset(self):
        """Reads every dataset in the file (what `python -m cliprepro.read` proves h5py can do);
        how many there were."""
        names = []
        self.file.visit(names.append)  # the names first: nothing raised inside libhdf5's visit
        count = 0
        for name in names:
            obj = self.file[name]
            if isinstance(obj, h5py.Dataset):
                self._read(obj)
                count += 1
        return count


def as_torch(array):
    """A numpy array of the log's dtypes as a torch tensor with the same bits."""
    import torch
    if array.dtype == NUMPY_DTYPES["bfloat16"]:
        return torch.from_numpy(np.require(array, requirements="C").view(np.int16)).view(
            torch.bfloat16)
    return torch.from_numpy(np.require(array, requirements="C"))


def as_numpy(tensor):
    """A torch tensor (any device) as a numpy array with the same bits and shape (0-d stays 0-d;
    bfloat16 becomes ml_dtypes.bfloat16)."""
    import torch
    t = tensor.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(NUMPY_DTYPES["bfloat16"])
    return t.numpy()
