"""Reads a cliprepro HDF5 log (format 1 or 2, docs/hdf5-layout.md) without losing a bit:

    from cliprepro import Log
    with Log("runs/quickstart.h5") as log:
        log.names("params/*")                      # tensor names, in the log's series order
        rows = log.digests("params/logit_scale")   # numpy structured array: step, order, digest, stats
        w = log.tensor("params/text_projection", step=1)            # numpy; bfloat16 as ml_dtypes
        t = log.tensor("params/text_projection", step=1, torch=True)  # or a torch tensor

Only the rows `/progress` vouches for are read, so a log of a killed run reads up to its last
complete step.
"""
import fnmatch
import json

import h5py
import numpy as np

from .tensor_bits import NUMPY_DTYPES, digest, read_raw

DIGEST_FIELDS = [("step", "<i8"), ("order", "<i4"), ("digest", "<u8"), ("stats", "<f8", (8,))]


class LogError(Exception):
    """A file that is not a readable cliprepro log, or a tensor/step it does not hold."""


def decode(value):
    """A string attribute as str: cliprepro writes fixed-length UTF-8 (h5py returns bytes); logs
    written before 2026-12 hold variable-length strings (str)."""
    return value.decode("utf-8") if isinstance(value, (bytes, np.bytes_)) else value


class Log:
    def __init__(self, path):
        self.path = str(path)
        try:
            self.file = h5py.File(self.path, "r")
        except OSError:
            try:  # a run killed while writing leaves the file flagged as open for SWMR writing
                self.file = h5py.File(self.path, "r", swmr=True)
            except OSError as e:
                raise LogError(f"{self.path}: not a readable HDF5 file ({e})") from None
        f = self.file
        if self.attr("format") != "cliprepro-log":
            raise LogError(f"{self.path}: not a cliprepro log (no format = cliprepro-log)")
        self.format_version = int(self.attr("format_version"))
        progress = f["progress"][()]
        self.last_step = int(progress[0])
        self._groups = {}
        version = self.format_version

        def visit(name, obj):
            if isinstance(obj, h5py.Group) and (
                    "digest" in obj if version == 1 else "series" in obj.attrs):
                self._groups[name] = obj
        f["tensors"].visititems(visit)
        if version == 1:
            self._names = sorted(self._groups)
            self._rows = None
        else:
            by_series = {int(g.attrs["series"]): n for n, g in self._groups.items()}
            self._names = [by_series[k] for k in sorted(by_series)]
            rows = f["digests"][()]
            if len(progress) >= 2:  # [step, rows]: exactly the rows written when /progress was
                if progress[1] > len(rows):
                    raise LogError(f"{self.path}: damaged: /progress counts {progress[1]} rows "
                                   f"of {len(rows)}")
                rows = rows[:progress[1]]
            self._rows = rows[rows["step"] <= self.last_step]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.file.close()

    def attr(self, name, default=""):
        return decode(self.file.attrs.get(name, default))

    @property
    def complete(self):
        return self.attr("status") == "complete"

    @property
    def config(self):
        """The resolved configuration (JSON) the run was made with."""
        return json.loads(self.attr("resolved_config", "{}"))

    @property
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

    def info(self, name):
        """dtype (log name), shape and phase of a tensor."""
        g = self._group(name)
        shape = g.attrs["shape"]  # h5py.Empty for a 0-d tensor (a null dataspace)
        return {"dtype": decode(g.attrs["dtype"]),
                "shape": () if isinstance(shape, h5py.Empty) else tuple(int(d) for d in shape),
                "phase": decode(g.attrs["phase"])}

    def digests(self, name):
        """The tensor's digest rows up to the last complete step: a numpy structured array with
        fields step, order, digest and stats (8 columns, `stats_columns`; NaN where the log keeps
        digests only, as goldens do)."""
        g = self._group(name)
        if self._rows is None:  # format 1: per-group datasets
            steps = g["steps"][()]
            out = np.zeros(len(steps), DIGEST_FIELDS)
            out["step"], out["order"], out["digest"] = steps, g["order"][()], g["digest"][()]
            out["stats"] = g["stats"][()] if "stats" in g else np.nan
            return out[out["step"] <= self.last_step]
        mine = self._rows[self._rows["series"] == int(g.attrs["series"])]
        out = np.zeros(len(mine), DIGEST_FIELDS)
        for field in ("step", "order", "digest"):
            out[field] = mine[field]
        out["stats"] = mine["stats"] if "stats" in mine.dtype.names else np.nan
        return out

    def full_steps(self, name):
        """Steps at which the tensor is stored in full (up to the last complete step)."""
        g = self._group(name)
        if "full_steps" not in g:
            return np.zeros(0, np.int64)
        steps = g["full_steps"][()][:g["full"].shape[0]]
        return steps[steps <= self.last_step]

    def tensor(self, name, step, torch=False):
        """The full tensor at `step` with its stored bits: numpy (bfloat16 as ml_dtypes.bfloat16)
        or, with torch=True, a torch tensor of the logged dtype."""
        steps = list(self.full_steps(name))
        if step not in steps:
            raise LogError(f"{self.path}: no full {name} at step {step} (full at steps "
                           f"{steps or 'none'}: add it to [log] full-tensors / full-steps)")
        g = self._group(name)
        array = read_raw(g["full"], steps.index(step))
        want = NUMPY_DTYPES.get(decode(g.attrs["dtype"]))
        if want is not None and array.dtype != want:
            raise LogError(f"{self.path}: {name} stored as {array.dtype}, attribute says {want}")
        return as_torch(array) if torch else array

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
