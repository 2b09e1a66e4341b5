"""python/cliprepro/op_trace.py: a TorchDispatchMode trace in cliprepro's trace format (CTest:
python_package). The C++ reader and comparison of such files: RecordOpenClip.* and Trace.*."""
import json
import os
import tempfile
import unittest

import h5py
import torch

from cliprepro.op_trace import OpTraceForRecorder, tensor_digest, write_trace


def one_step(seed):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(5, 8)
    model(x).sum().backward()
    opt.step()  # the moments exist: the traced step names them
    opt.zero_grad()
    tracer = OpTraceForRecorder(model, opt)
    model(x).sum().backward()
    opt.step()
    return tracer.stop()


class OpTraceTest(unittest.TestCase):
    def test_phases_modules_and_digests(self):
        ops = one_step(0)
        phases = {op["phase"] for op in ops}
        self.assertEqual(phases, {"forward", "backward", "optimizer"})
        modules = {op["module"] for op in ops}
        self.assertIn("0", modules)  # Sequential's first Linear, by its named_modules() name
        self.assertTrue(any(m.startswith("(") and "Backward" in m for m in modules), modules)
        self.assertTrue(any(m.startswith("optimizer/exp_avg_sq/") for m in modules), modules)
        addmm = next(op for op in ops if op["name"] == "aten::addmm")
        self.assertEqual(len(addmm["outputs"][0]), 2)  # desc and digest
        t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
        self.assertEqual(tensor_digest(t.t()), tensor_digest(t.t().contiguous()))
        self.assertNotEqual(tensor_digest(t), tensor_digest(t.t()))

    def test_same_program_same_trace_and_the_file_holds_it(self):
        a, b, other = one_step(0), one_step(0), one_step(1)
        self.assertEqual(a, b)
        self.assertNotEqual(a, other)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "t.trace.h5")
            write_trace(path, {1: a}, {"scenario_name": "unit"})
            with h5py.File(path) as f:
                self.assertEqual(f.attrs["format"], "cliprepro-trace")
                g = f["steps/1"]
                self.assertEqual(len(g["name"]), len(a))
                self.assertEqual(json.loads(g["outputs"][3]), a[3]["outputs"])
                self.assertEqual(list(g["end_order"][:3]), [0, 1, 2])


if __name__ == "__main__":
    unittest.main()
