"""The recorder's checks and defaults for OpenCLIP's flags (issue 36): --train-data that does not
exist is one line and exit 2 before OpenCLIP starts; OpenCLIP's logs and checkpoints go beside
the log unless --logs is given, not into the current directory."""
import glob
import os
import subprocess
import sys
import tempfile
import unittest

import cliprepro
from cliprepro.record_args import RecordError, check_data_paths, parse, with_logs_default

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY_MODEL = os.path.join(ROOT, "src", "model", "configs", "tiny-bpe.json")
# Subprocesses import the cliprepro this test imported.
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(
    [os.path.dirname(os.path.dirname(cliprepro.__file__)), os.environ.get("PYTHONPATH", "")]))


def record(cwd, out, openclip_flags, timeout):
    return subprocess.run([sys.executable, "-m", "cliprepro.record", "--out", out, "--threads",
                           "2", "--", "--model", TINY_MODEL, "--dataset-type", "csv",
                           "--batch-size", "8", "--epochs", "1", "--lr", "1e-3", "--seed", "3",
                           "--report-to", "none", "--precision", "fp32", "--workers", "0",
                           *openclip_flags], cwd=cwd, capture_output=True, text=True, env=ENV,
                          timeout=timeout)


class LogsDefault(unittest.TestCase):
    def test_logs_go_beside_the_log_unless_given(self):
        flags, logs = with_logs_default(["--batch-size", "8"], "runs/rec.h5")
        self.assertEqual(logs, os.path.abspath("runs/rec.openclip-logs"))
        self.assertEqual(flags, ["--batch-size", "8", "--logs", logs])
        for given in (["--logs", "mine"], ["--logs=mine"], ["--logs", "none"]):
            self.assertEqual(with_logs_default(given, "runs/rec.h5"), (given, None))

    def test_help_documents_the_logs_default(self):
        r = subprocess.run([sys.executable, "-m", "cliprepro.record", "--help"],
                           capture_output=True, text=True, env=ENV, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(".openclip-logs/", r.stdout)
        self.assertIn("--train-data", r.stdout)

    def test_a_one_step_recording_leaves_no_logs_in_the_current_directory(self):
        with tempfile.TemporaryDirectory() as d:
            r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts",
                                                             "make_image_text_set.py"),
                                os.path.join(d, "set"), "8", "--no-shards"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            r = record(d, "rec/a.h5", ["--train-data", "set/train.csv"], timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            logs = os.path.join(d, "rec", "a.openclip-logs")
            self.assertIn(f"OpenCLIP's logs and checkpoints go to {logs}", r.stdout)
            self.assertFalse(os.path.exists(os.path.join(d, "logs")), os.listdir(d))
            self.assertTrue(glob.glob(os.path.join(logs, "*", "checkpoints", "epoch_1.pt")),
                            r.stdout)


class DataPaths(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.dir = tmp.name
        for name in ("train.csv", "shard-001.tar"):
            open(os.path.join(self.dir, name), "w").close()

    def path(self, name):
        return os.path.join(self.dir, name)

    def test_missing_train_data_is_one_line_and_exit_2(self):
        r = record(self.dir, "rec/a.h5", ["--train-data", "nope.csv"], timeout=60)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertEqual(r.stderr, "error: --train-data nope.csv: no such file\n")
        self.assertNotIn("Traceback", r.stdout + r.stderr)
        self.assertFalse(os.path.exists(self.path("rec")))

    def test_what_openclip_would_fail_on_is_named(self):
        cases = [(["--train-data", self.path("nope.csv")], "--train-data .*nope.csv: no such file"),
                 (["--train-data=" + self.dir], "is a directory, not a file"),
                 (["--train-data", self.path("train.csv"), "--imagenet-val",
                   self.path("train.csv")], "--imagenet-val .*: not a directory"),
                 (["--train-data", self.path("shard-{005..009}.tar")],
                  "none of its 5 files exists"),
                 (["--train-data", self.path("train.csv") + "::" + self.path("b.tar")],
                  "b.tar: no such file")]
        for flags, message in cases:
            with self.assertRaisesRegex(RecordError, message, msg=flags):
                check_data_paths(flags)

    def test_readable_paths_patterns_and_urls_pass(self):
        for flags in (["--train-data", self.path("train.csv")],
                      ["--train-data", self.path("shard-{000..009}.tar")],
                      ["--train-data", "pipe:curl -s https://example.org/s-{0..9}.tar"],
                      ["--train-data", "s3://bucket/s-{0..9}.tar"],
                      ["--dataset-type", "synthetic", "--train-data", "unused"],
                      ["--imagenet-val", self.dir]):
            check_data_paths(flags)

    def test_usage_without_openclip_flags(self):
        with self.assertRaisesRegex(RecordError, "usage:"):
            parse(["--out", "x.h5"], "")


if __name__ == "__main__":
    unittest.main()
