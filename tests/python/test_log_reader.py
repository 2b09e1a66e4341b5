"""python/cliprepro's reader on logs cliprepro's C++ writer made (CTest: python_package)."""
import os
import tempfile
import unittest

import h5py
import ml_dtypes
import numpy as np
import torch

from cliprepro import Log, LogError
from cliprepro.log_write import Entry, LogWriter
from cliprepro.tensor_bits import digest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# A committed golden of a pure_bf16 run: parameters stored as bfloat16 by the C++ writer.
BF16_LOG = os.path.join(ROOT, "golden", "precision", "pure_bf16.h5")


class ReaderOnCppLogs(unittest.TestCase):
    def test_bfloat16_bits_equal_the_stored_ones(self):
        with Log(BF16_LOG) as log:
            names = [n for n in log.names() if log.info(n)["dtype"] == "bfloat16"
                     and len(log.full_steps(n))]
            self.assertGreaterEqual(len(names), 3)
            checked = 0
            for name in names:
                logged = {int(r["step"]): int(r["digest"]) for r in log.digests(name)}
                for step in log.full_steps(name):
                    t = log.tensor(name, int(step))
                    self.assertEqual(t.dtype, np.dtype(ml_dtypes.bfloat16), name)
                    # The C++ writer digested the bits in memory: equal digest = equal bits.
                    self.assertEqual(digest(t), logged[int(step)], f"{name} step {step}")
                    as_torch = log.tensor(name, int(step), torch=True)
                    self.assertEqual(as_torch.dtype, torch.bfloat16)
                    self.assertEqual(digest(as_torch.view(torch.int16).numpy()), logged[int(step)])
                    checked += 1
            self.assertGreater(checked, 3)

    def test_plain_h5py_would_convert_bfloat16(self):
        # The trap the reader exists for: h5py converts the stored bfloat16 to another float type
        # (float32 in h5py 3.16), so its bytes are not the run's.
        with Log(BF16_LOG) as log:
            name = "params/text_projection"
            step = int(log.full_steps(name)[0])
            row = list(log.full_steps(name)).index(step)
            naive = log.file[f"tensors/{name}/full"][row]
            self.assertNotEqual(naive.dtype, np.dtype(ml_dtypes.bfloat16))
            self.assertNotEqual(digest(naive), digest(log.tensor(name, step)))

    def test_digests_are_a_structured_array(self):
        with Log(BF16_LOG) as log:
            rows = log.digests("scalars/loss")
            self.assertEqual(rows.dtype.names, ("step", "order", "digest", "stats"))
            self.assertEqual(list(rows["step"]), sorted(rows["step"]))
            self.assertGreater(len(rows), 1)

    def test_missing_tensor_and_step_are_named(self):
        with Log(BF16_LOG) as log:
            with self.assertRaisesRegex(LogError, "no tensor params/nope"):
                log.tensor("params/nope", 0)
            with self.assertRaisesRegex(LogError, r"no full scalars/lr at step 123456"):
                log.tensor("scalars/lr", 123456)

    def test_not_a_log(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "x.h5")
            with h5py.File(path, "w") as f:
                f["a"] = 1
            with self.assertRaisesRegex(LogError, "not a cliprepro log"):
                Log(path)


class WriterRoundTrip(unittest.TestCase):
    def test_written_bits_read_back(self):
        rng = np.random.default_rng(1)
        values = rng.standard_normal((3, 4)).astype(np.float32)
        tensors = {"params/f32": values, "params/bf16": values.astype(ml_dtypes.bfloat16),
                   "scalars/loss": np.float32(2.5), "data/ids": np.arange(4, dtype=np.int64)}
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "w.h5")
            w = LogWriter(path, {"resolved_config": "{}", "fingerprint": "{}"}, lambda n: True)
            for step in range(3):
                w.write_step(step, [Entry(n, "optimizer", a, True) for n, a in tensors.items()])
            w.close()
            with Log(path) as log:
                self.assertTrue(log.complete)
                self.assertEqual(log.last_step, 2)
                self.assertEqual(log.verify(), [])
                for n, a in tensors.items():
                    got = log.tensor(n, 2)
                    self.assertEqual(got.dtype, np.asarray(a).dtype, n)
                    self.assertEqual(got.shape, np.asarray(a).shape, n)
                    self.assertEqual(got.tobytes(), np.asarray(a).tobytes(), n)

    def test_writer_thread_says_back_pressure_and_failures(self):
        """Steps go to a writer thread through a queue bounded in bytes: over it, write_step
        waits, and the log's writer_wait says how long. A failure on that thread is raised at the
        next write_step and by close(), which marks the log failed."""
        import json

        import h5py
        from cliprepro.log_write import LogWriterError
        import threading
        big = np.zeros((3, 1 << 18), np.float32)  # 3 MiB a step, over a 1 MiB queue
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "q.h5")
            w = LogWriter(path, {"resolved_config": "{}", "fingerprint": "{}"}, lambda n: True,
                          queue_mib=1)
            # A slow disk: the writer holds step 0 for 0.3 s, so step 1 must wait for it.
            release, write = threading.Event(), w._write
            w._write = lambda step, entries: (release.wait(), write(step, entries))
            threading.Timer(0.3, release.set).start()
            for step in range(6):
                w.write_step(step, [Entry("params/big", "optimizer", big + step, True)])
            w.close()
            with Log(path) as log:
                self.assertEqual(list(log.full_steps("params/big")), list(range(6)))
                self.assertEqual(log.verify(), [])
            with h5py.File(path, "r") as f:
                wait = json.loads(f.attrs["writer_wait"])
            self.assertGreaterEqual(wait["steps"], 1)
            self.assertGreater(wait["seconds"], 0.2)
            self.assertEqual(wait["queue_mib"], 1)

            path = os.path.join(d, "fail.h5")  # params/x is stored but was not selected up front
            w = LogWriter(path, {"resolved_config": "{}", "fingerprint": "{}"},
                          lambda n: n == "scalars/a")
            w.write_step(0, [Entry("scalars/a", "forward", np.float32(1), True)])
            w.write_step(1, [Entry("params/x", "optimizer", big[0], True)])
            with self.assertRaisesRegex(LogWriterError, "params/x: stored at step 1 but not"):
                w.drain()
            with self.assertRaisesRegex(LogWriterError, "the log writer failed"):
                w.close()
            with Log(path) as log:
                self.assertFalse(log.complete)
                self.assertEqual(log.last_step, 0)

    def test_webdataset_keys_read_back_as_strings(self):
        from cliprepro.record_wds import key_rows
        keys = ["000007", "dir/sub/ключ", "x" * 256]
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "k.h5")
            w = LogWriter(path, {"resolved_config": "{}", "fingerprint": "{}"}, lambda n: True)
            w.write_step(1, [Entry("data/sample_keys", "data", key_rows(keys, [0, 1, 2]), True)])
            w.close()
            with Log(path) as log:
                self.assertEqual(log.sample_keys(1), keys)
        with self.assertRaisesRegex(Exception, "257 bytes in UTF-8; data/sample_keys holds at most"):
            key_rows(["y" * 257], [5 << 32])


if __name__ == "__main__":
    unittest.main()
