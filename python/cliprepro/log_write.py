"""Writes a cliprepro log (format version 2, docs/hdf5-layout.md) from Python: the recorder's half
of "the same log format". Mirrors harness/log/log_writer.cpp: one group per tensor under /tensors,
one /digests table, /progress updated after the rows it counts, SWMR once every tensor exists (so
a killed recording stays readable up to its last complete step), and the end marked by reopening.

As there, the training thread only digests and copies; a writer thread does every HDF5 call
(h5py lets other threads run while it writes). The queue between them is bounded in bytes: when
it is full, training waits (back-pressure), and the log says for how long (`writer_wait`).
A device tensor stored in full is copied into pinned host memory without blocking; the writer
thread waits for that copy, not the training thread.
"""
import json
import math
import queue
import threading
import time

import h5py
import numpy as np

from . import native
from .h5_native import libhdf5
from .log import as_numpy
from .tensor_bits import NUMPY_DTYPES, STATS_COLUMNS, as_torch, bfloat16_file_type, torch_dtype_name

FORMAT_VERSION = "2"
PHASES = ("data", "forward", "backward", "optimizer", "eval")
_ROW = np.dtype([("step", "<i8"), ("series", "<i4"), ("order", "<i4"), ("digest", "<u8"),
                 ("stats", "<f8", (8,))])
_MAX_CHUNK_BYTES = 1 << 20


def set_str_attr(obj, name, value):
    """A fixed-length, null-padded UTF-8 string attribute, as cliprepro writes them (in the
    checksummed object header, not the global heap)."""
    data = str(value).encode("utf-8")
    t = h5py.h5t.C_S1.copy()
    t.set_size(max(len(data), 1))
    t.set_strpad(h5py.h5t.STR_NULLPAD)
    t.set_cset(h5py.h5t.CSET_UTF8)
    if name in obj.attrs:
        del obj.attrs[name]
    obj.attrs.create(name, np.array(data, dtype=f"S{max(len(data), 1)}"), dtype=h5py.Datatype(t))


def chunk_shape(shape, itemsize):
    """(1, *shape) halved along its largest dimension until a chunk is at most ~1 MiB."""
    chunk = [1] + [max(int(d), 1) for d in shape]
    while math.prod(chunk) * itemsize > _MAX_CHUNK_BYTES and max(chunk[1:], default=1) > 1:
        i = 1 + int(np.argmax(chunk[1:]))
        chunk[i] = (chunk[i] + 1) // 2
    return tuple(chunk)


class Entry:
    """One tensor of a step (a torch tensor on any device, or a numpy array) and how it is logged:
    `mode` "full" (digested, and a host copy of its bits stored), "digest", or "declare" (at a
    step digest-every skips: only its group is made, so that every group exists before SWMR
    starts; nothing is read). True/False are "full"/"digest". Digests and statistics are
    computed where the tensor lives by cliprepro's own code (native.py). `now`: at once, for a
    tensor the caller may change afterwards (an activation an in-place op reuses); otherwise
    the writer digests a step's pending entries together on several threads (digest_pending)
    before writing them, and the tensor must stay as it is until then."""
    __slots__ = ("name", "phase", "dtype", "shape", "digest", "stats", "full", "pending")

    def __init__(self, name, phase, tensor, mode, now=True):
        assert phase in PHASES, phase
        mode = {True: "full", False: "digest"}.get(mode, mode)
        assert mode in ("full", "digest", "declare"), mode
        t = as_torch(tensor)
        self.name, self.phase = name, phase
        self.dtype, self.shape = torch_dtype_name(t.dtype), tuple(t.shape)
        self.full = self.digest = self.stats = self.pending = None
        if mode == "declare":
            return
        if mode == "full":
            self.full = (DeviceCopy(t) if t.device.type == "cuda"
                         else as_numpy(t.clone() if t.device.type == "cpu" else t))
        if now:
            self.digest, self.stats = native.digest_stats(t)
        else:
            self.pending = t

    @property
    def declared_only(self):
        return self.digest is None and self.pending is None


class DeviceCopy:
    """A device tensor's bits copied into pinned host memory on its stream, without waiting: the
    copy is ordered before any later in-place change of the tensor on that stream. numpy() waits
    for it (the writer thread)."""
    __slots__ = ("host", "done")

    def __init__(self, t):
        import torch
        t = t.detach()
        self.host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
        self.host.copy_(t, non_blocking=True)
        self.done = torch.cuda.Event()
        self.done.record()

    @property
    def nbytes(self):
        return self.host.numel() * self.host.element_size()

    def numpy(self):
        self.done.synchronize()
        return as_numpy(self.host)


class LogWriterError(RuntimeError):
    """The writer thread could not write the log (the disk filled, …): raised on the training
    thread at its next write_step, and by close() after it has marked the log failed."""


def _nbytes(full):
    return 0 if full is None else full.nbytes


def digest_pending(entries):
    """Digests and statistics of the entries not yet digested, in one call on torch's threads."""
    pending = [e for e in entries if e.pending is not None]
    for e, (d, st) in zip(pending, native.digest_stats_many([e.pending for e in pending])):
        e.digest, e.stats, e.pending = d, st, None


def _compact(plist, links=True):
    """Links and attributes kept in the (checksummed) object header however many there are, as
    cliprepro's writer does (h5_compact_storage in harness/log/h5_types.h): HDF5's dense storage
    puts them in fractal heap blocks without checksums, on which libhdf5 1.10.8 crashes."""
    if links and libhdf5().H5Pset_link_phase_change(plist.id, 65535, 0) < 0:
        raise RuntimeError("H5Pset_link_phase_change failed")
    plist.set_attr_phase_change(65535, 0)
    return plist


def _create_compact(path):
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_V110, h5py.h5f.LIBVER_V110)
    fcpl = _compact(h5py.h5p.create(h5py.h5p.FILE_CREATE), links=False)
    return h5py.h5f.create(path.encode(), h5py.h5f.ACC_TRUNC, fapl=fapl, fcpl=fcpl)


def _compact_groups(f, path):
    """Creates the groups along `path` that do not exist yet with compact storage; the last one."""
    gcpl = _compact(h5py.h5p.create(h5py.h5p.GROUP_CREATE))
    parts = path.split("/")
    for i in range(len(parts)):
        prefix = "/".join(parts[:i + 1])
        if prefix not in f:
            h5py.h5g.create(f.id, prefix.encode(), gcpl=gcpl)
    return f[path]


class LogWriter:
    def __init__(self, path, provenance, may_store, queue_mib=256):
        """`provenance`: root attributes (strings). `may_store(name)`: whether the selection can
        store `name` in full at some step (its datasets are made up front: no new objects may
        appear once SWMR has started). `queue_mib`: the bound of the writer queue (the [log]
        queue-mib key's default)."""
        self.path, self.may_store = str(path), may_store
        self.file = h5py.File(_create_compact(self.path), libver=("v110", "v110"))
        for key, value in {"format": "cliprepro-log", "format_version": FORMAT_VERSION,
                           "status": "running", "stats_columns": STATS_COLUMNS,
                           **provenance}.items():
            set_str_attr(self.file, key, value)
        _compact_groups(self.file, "tensors")
        self.digests = self.file.create_dataset("digests", (0,), _ROW, maxshape=(None,),
                                                chunks=(4096,))
        self.progress = self.file.create_dataset("progress", data=np.array([-1, 0], np.int64))
        self.series = {}  # name -> (number, group)
        self.rows = 0
        self.first_step = self.last_step = None
        self.swmr = False
        self.limit, self.queued = max(queue_mib, 1) << 20, 0
        self.cv = threading.Condition()
        self.queue, self.error = [], None
        self.wait_s, self.waited_steps = 0.0, 0
        self.thread = threading.Thread(target=self._writer, name="cliprepro-log-writer",
                                       daemon=True)
        self.thread.start()

    def _group(self, e):
        if e.name in self.series:
            return self.series[e.name][1]
        g = _compact_groups(self.file, "tensors/" + e.name)
        set_str_attr(g, "dtype", e.dtype)
        g.attrs.create("shape", np.array(e.shape, np.int64) if e.shape else h5py.Empty("<i8"))
        set_str_attr(g, "phase", e.phase)
        g.attrs.create("series", np.int64(len(self.series)))
        if self.may_store(e.name):
            g.create_dataset("full_steps", (0,), "<i8", maxshape=(None,), chunks=(256,))
            itemsize = NUMPY_DTYPES[e.dtype].itemsize
            ftype = (h5py.Datatype(bfloat16_file_type()) if e.dtype == "bfloat16"
                     else NUMPY_DTYPES[e.dtype])
            ds = g.create_dataset("full", (0,) + tuple(e.shape), ftype,
                                  maxshape=(None,) + tuple(e.shape),
                                  chunks=chunk_shape(e.shape, itemsize))
            if e.dtype == "bfloat16":
                set_str_attr(ds, "dtype", "bfloat16")
        self.series[e.name] = (len(self.series), g)
        return g

    def write_step(self, step, entries):
        """Queues one step's entries (in execution order) for the writer thread, once they are
        digested: the caller may change the tensors when this returns. Waits while the queue is
        over its bound (an oversized step waits for an empty queue)."""
        digest_pending(entries)
        size = sum(_nbytes(e.full) for e in entries)
        t0 = time.perf_counter()
        with self.cv:
            waited = False
            while not self.error and self.queue and self.queued + size > self.limit:
                waited = True
                self.cv.wait()
            self._rethrow()
            self.queue.append((step, entries, size))
            self.queued += size
            self.cv.notify_all()
        if waited:
            self.wait_s += time.perf_counter() - t0
            self.waited_steps += 1

    def drain(self):
        """Waits until every queued step is written and flushed (/progress names it)."""
        with self.cv:
            while self.queue and not self.error:
                self.cv.wait()
            self._rethrow()

    def _rethrow(self):
        if self.error is not None:
            raise LogWriterError(f"{self.path}: the log writer failed: {self.error}") \
                from self.error

    def _writer(self):
        while True:
            with self.cv:
                while not self.queue:
                    self.cv.wait()
                step, entries, size = self.queue[0]
            if step is None:
                return
            try:
                self._write(step, entries)
            except BaseException as e:  # said at the next write_step or at close
                with self.cv:
                    self.error = e
                    self.queue.clear()
                    self.cv.notify_all()
                return
            with self.cv:
                self.queue.pop(0)
                self.queued -= size
                self.cv.notify_all()

    def _write(self, step, entries):
        """Appends one step's rows and full tensors, then /progress, then flushes."""
        rows = np.zeros(len(entries), _ROW)
        n = 0
        for order, e in enumerate(entries):  # order: the position among all the step's tensors
            g = self._group(e)
            if e.declared_only:
                continue
            rows[n] = (step, self.series[e.name][0], order, e.digest, e.stats)
            n += 1
            if e.full is not None:
                self._append_full(g, step, e)
        rows = rows[:n]
        self.digests.resize((self.rows + len(rows),))
        self.digests[self.rows:] = rows
        self.rows += len(rows)
        self.file.flush()  # the rows reach the disk before /progress claims them
        self.progress[...] = np.array([step, self.rows], np.int64)
        self.file.flush()
        self.first_step = step if self.first_step is None else self.first_step
        self.last_step = step
        if not self.swmr and self.last_step > self.first_step:
            self.file.swmr_mode = True  # every tensor exists after the first training step
            self.swmr = True

    def _append_full(self, g, step, e):
        if "full" not in g:
            raise ValueError(f"{e.name}: stored at step {step} but not selected up front")
        steps, full = g["full_steps"], g["full"]
        k = full.shape[0]
        steps.resize((k + 1,))
        steps[k] = step
        full.resize((k + 1,) + full.shape[1:])
        array = e.full.numpy() if isinstance(e.full, DeviceCopy) else e.full
        if e.dtype == "bfloat16":  # write the bits: no conversion through float
            fspace = full.id.get_space()
            fspace.select_hyperslab((k,) + (0,) * len(e.shape), (1,) + tuple(e.shape))
            bits = array.view(np.uint16).reshape((1,) + tuple(e.shape))
            full.id.write(h5py.h5s.create_simple(bits.shape), fspace, bits,
                          mtype=full.id.get_type())
        else:
            full[k] = array

    def close(self, status="complete", failure=""):
        """Waits for the writer thread to write every queued step, then marks how the log ended
        (complete, failed, interrupted), the last step it holds and how long training waited for
        the writer."""
        with self.cv:
            self.queue.append((None, None, 0))
            self.cv.notify_all()
        self.thread.join()
        error = self.error
        last = -1 if self.last_step is None else self.last_step
        self.file.close()
        if error is not None and status == "complete":
            status, failure = "failed", f"the log writer failed: {error}"
        with h5py.File(self.path, "r+") as f:  # attributes cannot change under SWMR: reopen
            set_str_attr(f, "last_step", str(last))
            set_str_attr(f, "status", status)
            set_str_attr(f, "writer_wait", json.dumps(
                {"seconds": round(self.wait_s, 6), "steps": self.waited_steps,
                 "queue_mib": self.limit >> 20}))
            if status != "complete":
                set_str_attr(f, "failure", failure)
        self._rethrow()

