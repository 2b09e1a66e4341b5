"""The recorder's digests and statistics (cliprepro.native: the C++ log writer's own code, loaded
from libcliprepro_digest.so) against XXH3 and against what the C++ writer logged (CTest:
python_package, which points CLIPREPRO_DIGEST_LIBRARY at this build's library)."""
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch
import xxhash

from cliprepro import Log, native
from cliprepro.log_write import Entry, digest_pending

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Two steps of the quickstart with every tensor stored: bfloat16 parameters in one, float16
# activations in the other; int64, int32 and float64 tensors in both.
RUN_SCENARIO = """extends = "{root}/scenarios/quickstart.toml"
name = "{precision}"
precision = "{precision}"
train-num-samples = 64
epochs = 1
zeroshot-frequency = 0
[log]
full-steps = [0, 1, 2]
full-tensors = ["*"]
"""
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32,
          torch.uint8, torch.bool]
# Around XXH3's own boundaries: 240 bytes (short inputs), 1 KiB blocks, 64-byte stripes.
LENGTHS = [0, 1, 3, 15, 16, 17, 59, 60, 61, 119, 120, 121, 255, 256, 257, 1023, 1024, 1025, 4097,
           65537, 300001]


def xxh3(t):
    return xxhash.xxh3_64_intdigest(t.contiguous().view(torch.uint8).numpy().tobytes())


def sample(dtype, n, seed):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.rand(n, generator=g) > 0.5
    if dtype == torch.uint8:
        return torch.randint(0, 256, (n,), generator=g, dtype=torch.uint8)
    return (torch.randn(n, generator=g) * 30).to(dtype)


class NativeDigest(unittest.TestCase):
    def test_every_dtype_and_length_is_xxh3_on_the_host_and_the_block_route(self):
        for dtype in DTYPES:
            for n in LENGTHS:
                t = sample(dtype, n, n)
                want = xxh3(t)
                self.assertEqual(native.digest_stats(t)[0], want, f"{dtype} x {n}")
                # The block route a device takes, forced here on the CPU.
                self.assertEqual(native.device_digest(t), want, f"block route {dtype} x {n}")

    def test_strided_and_multidimensional_tensors_digest_their_c_order_bytes(self):
        t = torch.randn(37, 41).t()  # not contiguous
        self.assertEqual(native.digest_stats(t)[0], xxh3(t.contiguous()))
        self.assertEqual(native.device_digest(t), xxh3(t.contiguous()))

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.logs = []
        for precision in ("pure_bf16", "amp"):
            toml = os.path.join(cls.tmp.name, precision + ".toml")
            with open(toml, "w") as f:
                f.write(RUN_SCENARIO.format(root=ROOT, precision=precision))
            subprocess.run([os.environ["CLIPREPRO_CLI"], "run", toml, "--out", cls.tmp.name,
                            "--no-golden", "-q"], check=True, stdout=subprocess.DEVNULL)
            cls.logs.append(os.path.join(cls.tmp.name, precision + ".h5"))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_stored_tensors_give_the_digest_and_statistics_the_cpp_writer_logged(self):
        seen = set()
        for path in self.logs:
            with Log(path) as log:
                for name in log.names():
                    rows = {int(r["step"]): r for r in log.digests(name)}
                    for step in log.full_steps(name):
                        t = log.tensor(name, int(step), torch=True)
                        d, st = native.digest_stats(t)
                        row = rows[int(step)]
                        where = f"{os.path.basename(path)} {name} step {step}"
                        self.assertEqual(d, int(row["digest"]), where)
                        # The same code: the same bits, NaN where the C++ writer had NaN.
                        np.testing.assert_array_equal(st, row["stats"], err_msg=where)
                        seen.add(t.dtype)
        self.assertTrue({torch.float32, torch.float64, torch.float16, torch.bfloat16,
                         torch.int64, torch.int32} <= seen, seen)

    def test_many_at_once_equals_one_by_one_and_counts_non_finite_values(self):
        ts = [sample(d, n, i) for i, (d, n) in enumerate(
            (d, n) for d in DTYPES for n in (0, 7, 4097, 65537))]
        ts[2][3] = float("nan") if ts[2].is_floating_point() else ts[2][3]
        bad = torch.randn(100000)
        bad[5], bad[77], bad[99999] = float("nan"), float("inf"), -float("inf")
        ts.append(bad)
        for threads in (1, 2, 3):
            many = native.digest_stats_many(ts, threads=threads)
            for t, (d, st) in zip(ts, many):
                d1, st1 = native.digest_stats(t)
                self.assertEqual(d, d1)
                np.testing.assert_array_equal(st, st1)
        _, st = native.digest_stats(bad)
        self.assertEqual(list(st[5:7]), [1.0, 2.0])
        finite = bad[bad.isfinite()].double()
        np.testing.assert_allclose(st[:5], [finite.min(), finite.max(), finite.mean(),
                                            finite.std(unbiased=False), finite.norm()],
                                   rtol=1e-6, atol=1e-6)

    def test_sixteen_bit_floats_take_the_float_pass_with_their_exact_values(self):
        for dtype in (torch.bfloat16, torch.float16):
            t = (torch.randn(100003) * 3 + 1).to(dtype)
            t[7], t[70], t[700] = float("nan"), float("inf"), 0.0
            d, st = native.digest_stats(t)
            self.assertEqual(d, xxh3(t))
            f = t.double()[t.double().isfinite()]
            np.testing.assert_allclose(st[:5], [f.min(), f.max(), f.mean(), f.std(unbiased=False),
                                                f.norm()], rtol=1e-5, err_msg=str(dtype))
            self.assertEqual(list(st[5:]), [1.0, 1.0, float((t == 0).sum())])

    def test_baseline_and_avx2_passes_give_the_same_bits(self):
        t = torch.randn(1 << 20) * 1e3 + 7
        np.testing.assert_array_equal(native.digest_stats(t)[1],
                                      native.digest_stats(t, baseline=True)[1])

    def test_device_statistics_agree_with_the_host_pass(self):
        t = torch.randn(123457, dtype=torch.float64)
        t[10] = float("nan")
        np.testing.assert_allclose(native.device_stats(t), native.digest_stats(t)[1], rtol=1e-12)

    def test_pending_entries_are_digested_together_and_may_not_be_skipped(self):
        ts = [torch.randn(1000), torch.arange(5), torch.randn(3, 3).to(torch.bfloat16)]
        entries = [Entry(f"params/t{i}", "optimizer", t, False, now=False)
                   for i, t in enumerate(ts)]
        self.assertTrue(all(e.digest is None for e in entries))
        digest_pending(entries)
        self.assertEqual([e.digest for e in entries], [xxh3(t) for t in ts])
        self.assertEqual(entries[2].dtype, "bfloat16")

    def test_a_missing_library_is_named_with_the_fix(self):
        env = dict(os.environ, CLIPREPRO_DIGEST_LIBRARY="/nonexistent/libcliprepro_digest.so")
        r = subprocess.run([sys.executable, "-c",
                            "import torch; from cliprepro import native; "
                            "native.digest_stats(torch.ones(3))"],
                           env=env, capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("/nonexistent/libcliprepro_digest.so is missing: scripts/setup.sh", r.stderr)


if __name__ == "__main__":
    unittest.main()
