"""Damaged logs (issue 36): `Log` raises LogError naming the file, and `python -m cliprepro.read`
exits 2 with one line on stderr: never a traceback, never a hang. The acceptance sweep flips bytes
(fixed seed) of a committed golden and of a killed run's log and reads each flip."""
import contextlib
import io
import json
import os
import queue
import random
import subprocess
import sys
import tempfile
import threading
import traceback
import unittest
from unittest import mock

import h5py

import cliprepro
from cliprepro import Log, LogError
from cliprepro.log_write import Entry, LogWriter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = os.path.join(ROOT, "golden", "precision", "pure_bf16.h5")
# Subprocesses import the cliprepro this test imported.
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(
    [os.path.dirname(os.path.dirname(cliprepro.__file__)), os.environ.get("PYTHONPATH", "")]))
THIS = os.path.abspath(__file__)
READ_TIMEOUT_S = 20  # longer counts as a hang (an intact golden reads in about a second)
# Inside the superblock's end-of-file address: libhdf5's SWMR-read retries of its checksum hung
# `python -m cliprepro.read` for over 5 minutes.
SUPERBLOCK_EOF_BYTE = 33
SEED = 36


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def flip(src, offset, dst):
    data = bytearray(read_bytes(src))
    data[offset] ^= 0xFF
    with open(dst, "wb") as f:
        f.write(data)


def write_log(path, provenance=None, killed=False):
    """A small format-2 log (float32 and bfloat16 tensors in full, a scalar as digests only);
    `killed`: the process exits before closing it, leaving it flagged as open for SWMR writing."""
    import ml_dtypes
    import numpy as np
    w = LogWriter(path, {"resolved_config": "{}", "fingerprint": "{}", **(provenance or {})},
                  lambda name: name.startswith("params/"))
    v = np.arange(12, dtype=np.float32).reshape(3, 4)
    for step in range(3):
        w.write_step(step, [Entry("params/w", "optimizer", v + step, True),
                            Entry("params/b", "optimizer", (v - step).astype(ml_dtypes.bfloat16),
                                  True),
                            Entry("scalars/loss", "forward", np.float32(step), False)])
    if killed:
        w.drain()  # every step flushed, as a process killed after its last step's flush leaves it
        sys.stdout.flush()
        os._exit(0)
    w.close()


def read_in_process(path):
    """`python -m cliprepro.read PATH` in this process: exit code, stdout, stderr and any
    traceback that escaped main()."""
    from cliprepro.read import main
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main([path])
        escaped = None
    except BaseException:  # what the command would have printed as a traceback
        rc, escaped = None, traceback.format_exc()
    return {"rc": rc, "out": out.getvalue(), "err": err.getvalue(), "traceback": escaped}


def worker(src, workdir, offsets):
    """Reads each flip of `src` in this process, one JSON line per flip as it finishes."""
    for offset in offsets:
        path = os.path.join(workdir, f"flip{offset}.h5")
        flip(src, offset, path)
        result = read_in_process(path)
        # Every file closed again: one left open inside libhdf5 would leak into the next read.
        result.update(offset=offset, path=path,
                      open_files=h5py.h5f.get_obj_count(h5py.h5f.OBJ_ALL, h5py.h5f.OBJ_FILE))
        os.remove(path)
        print(json.dumps(result), flush=True)


def sweep(src, offsets, workdir):
    """{offset: result} for every flip, read by a worker process; a read taking more than
    READ_TIMEOUT_S is recorded as a hang (its worker killed, the rest go to a new one)."""
    results, todo = {}, list(offsets)
    while todo:
        proc = subprocess.Popen([sys.executable, THIS, "worker", src, workdir, *map(str, todo)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=ENV)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout] + [lines.put("")],
                         daemon=True).start()
        while todo:
            try:
                line = lines.get(timeout=READ_TIMEOUT_S)
            except queue.Empty:
                results[todo.pop(0)] = {"hang": True}
                break
            if not line:  # the worker died: a crash inside libhdf5
                proc.wait()
                results[todo.pop(0)] = {"crash": proc.returncode, "err": proc.stderr.read()}
                break
            result = json.loads(line)
            results[result["offset"]] = result
            todo.remove(result["offset"])
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    return results


def read_command(path):
    return subprocess.run([sys.executable, "-m", "cliprepro.read", path], capture_output=True,
                          text=True, env=ENV, timeout=READ_TIMEOUT_S)


class ByteFlipSweep(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.killed = os.path.join(d, "killed.h5")
        subprocess.run([sys.executable, THIS, "killed", cls.killed], env=ENV, check=True,
                       timeout=60)
        rng = random.Random(SEED)
        golden_size = os.path.getsize(GOLDEN)
        golden_offsets = [SUPERBLOCK_EOF_BYTE] + rng.sample(
            sorted(set(range(golden_size)) - {SUPERBLOCK_EOF_BYTE}), 199)
        # The killed log is mostly an unwritten (zero) chunk: flip where its structures are.
        killed_bytes = read_bytes(cls.killed)
        killed_offsets = [SUPERBLOCK_EOF_BYTE] + rng.sample(
            [i for i, b in enumerate(killed_bytes) if b and i != SUPERBLOCK_EOF_BYTE], 59)
        results = {}
        threads = [threading.Thread(target=lambda k, src, offs: results.update(
            {k: sweep(src, offs, d)}), args=args) for args in (
                ("golden", GOLDEN, golden_offsets), ("killed", cls.killed, killed_offsets))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        cls.results = results

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_every_flip_reads_or_exits_2_with_one_line(self):
        counts = {}
        for fixture, results in self.results.items():
            for offset, r in sorted(results.items()):
                where = f"{fixture} byte {offset}: {r}"
                self.assertNotIn("hang", r, where)
                self.assertNotIn("crash", r, where)
                self.assertIsNone(r["traceback"], where)
                self.assertEqual(r["open_files"], 0, where)
                if r["rc"] == 2:
                    self.assertEqual(len(r["err"].splitlines()), 1, where)
                    self.assertTrue(r["err"].startswith(f"error: {r['path']}: "), where)
                elif r["rc"] == 1:  # a flip in stored bits the digest check caught
                    self.assertIn("digest mismatch:", r["out"], where)
                else:
                    self.assertEqual(r["rc"], 0, where)
                    self.assertEqual(r["err"], "", where)
                key = f"{fixture} exit {r['rc']}"
                counts[key] = counts.get(key, 0) + 1
            self.assertEqual(results[SUPERBLOCK_EOF_BYTE]["rc"], 2, fixture)
        self.assertEqual(sum(counts.values()), 260)
        print(f"\nbyte-flip sweep (seed {SEED}): {dict(sorted(counts.items()))}, "
              "0 tracebacks, 0 hangs", file=sys.stderr)

    def test_the_command_exits_as_main_returns(self):
        # Real `python -m cliprepro.read` runs: the superblock flips (the former hang, and the
        # SWMR-read path of a killed log), the intact killed log, and one flip per exit code seen.
        cases = [(GOLDEN, SUPERBLOCK_EOF_BYTE, 2), (self.killed, SUPERBLOCK_EOF_BYTE, 2),
                 (self.killed, None, 0)]
        for fixture, src in (("golden", GOLDEN), ("killed", self.killed)):
            firsts = {}
            for offset, r in sorted(self.results[fixture].items()):
                firsts.setdefault(r.get("rc"), offset)
            cases += [(src, offset, rc) for rc, offset in firsts.items()]
        for src, offset, rc in cases:
            path = src
            if offset is not None:
                path = os.path.join(self.tmp.name, f"command{offset}.h5")
                flip(src, offset, path)
            r = read_command(path)
            where = f"{src} byte {offset}: {r.stdout}{r.stderr}"
            self.assertEqual(r.returncode, rc, where)
            self.assertNotIn("Traceback", r.stderr, where)
            if rc == 2:
                self.assertEqual(len(r.stderr.splitlines()), 1, where)
                self.assertIn(path, r.stderr, where)


class LogErrors(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def test_missing_file_and_not_hdf5_are_named(self):
        with self.assertRaisesRegex(LogError, "nope.h5: cannot open"):
            Log(self.path("nope.h5"))
        with open(self.path("text.h5"), "w") as f:
            f.write("not a log\n")
        with self.assertRaisesRegex(LogError, "text.h5: not an HDF5 file"):
            Log(self.path("text.h5"))
        r = read_command(self.path("nope.h5"))
        self.assertEqual((r.returncode, r.stderr.count("\n")), (2, 1), r.stderr)

    def test_fifo_directory_and_device_are_refused_not_waited_on(self):
        os.mkfifo(self.path("fifo.h5"))  # opened for reading, a FIFO blocked until a writer came
        for p in (self.path("fifo.h5"), self.tmp.name, "/dev/zero"):
            with self.assertRaisesRegex(LogError, "not a regular file"):
                Log(p)

    def test_damaged_superblock_is_named(self):
        # In a subprocess: libhdf5's retries on this file once took over 5 minutes.
        flip(GOLDEN, SUPERBLOCK_EOF_BYTE, self.path("sb.h5"))
        r = subprocess.run([sys.executable, "-c", "import sys\nfrom cliprepro import Log, LogError"
                            "\ntry:\n    Log(sys.argv[1])\nexcept LogError as e:\n    print(e)",
                            self.path("sb.h5")], capture_output=True, text=True, env=ENV,
                           timeout=READ_TIMEOUT_S)
        self.assertRegex(r.stdout, r"sb\.h5: damaged or truncated HDF5 superblock", r.stderr)

    def test_accessor_errors_name_the_file_and_dataset(self):
        with Log(GOLDEN) as log:
            with mock.patch.object(h5py.Dataset, "__getitem__",
                                   side_effect=OSError("Can't synchronously read data")):
                with self.assertRaisesRegex(LogError, "pure_bf16.h5: .*"
                                            "/tensors/scalars/lr/full_steps.*synchronously"):
                    log.full_steps("scalars/lr")
                with self.assertRaisesRegex(LogError, "pure_bf16.h5: "):
                    log.verify()

    def test_config_that_is_not_json_is_a_log_error(self):
        write_log(self.path("cfg.h5"), {"resolved_config": "{not json"})
        with Log(self.path("cfg.h5")) as log:
            with self.assertRaisesRegex(LogError, r"cfg\.h5: damaged or unreadable log \(config\)"):
                log.config


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        worker(sys.argv[2], sys.argv[3], [int(x) for x in sys.argv[4:]])
    elif sys.argv[1:2] == ["killed"]:
        write_log(sys.argv[2], killed=True)
    else:
        unittest.main()
