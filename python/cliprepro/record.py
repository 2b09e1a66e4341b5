"""Runs OpenCLIP's own trainer (open_clip_train.main, in this process) and records it in cliprepro's
log format, so `cliprepro compare` / `report` can compare the real OpenCLIP run step by step with a
cliprepro run or with another recording.

    python -m cliprepro.record --out LOG.h5 [--full-tensors GLOB...] [--full-steps SPEC...]
        [--digest-every N] [--window A:B] [--threads N] [--trace-steps S...] [--trace-out F]
        -- <open_clip_train.main flags>

Every tensor's digest and statistics are logged at every step, or at the steps divisible by
--digest-every N (docs/hdf5-layout.md), computed where the tensor lives by cliprepro's own code
(libcliprepro_digest.so, installed by scripts/setup.sh). Stored in
full: data/* at every step and params/*, buffers/* at step 0 (what a replay needs:
dataset-type = "replay"), plus the --full-tensors globs at the --full-steps (cliprepro's [log]
syntax: integers, -1 = the last step, "a:b", "a:", "a:b:k"). Under torchrun each rank writes
LOG.rank<R>.h5 and rank 0 LOG.manifest.json, as cliprepro does. `--model` may be a path to a
model-config JSON (registered with open_clip.add_model_config under its file stem). --window and
OpenCLIP's --resume record part of a run (record_steps.py); WebDataset pipelines record with
each sample's key (record_wds.py).
"""
import collections
import datetime
import json
import logging
import os
import sys

from .record_args import RecordError, check_data_paths, parse, with_logs_default
from .record_steps import StepSelection
from .record_wds import RecordingWebLoader
from .record_wds import install as record_webdataset

REFUSED = {  # flags whose effect the recorder cannot log yet, refused by name rather than dropped
    "--imagenet-v2": "ImageNet-V2 zero-shot is not recorded (cliprepro has no such eval); "
                     "record without it",
    "--val-data": "validation is not recorded yet; record without it (it does not change training)",
    "--distill": "distillation is not recorded (cliprepro trains no teacher)",
    "--horovod": "Horovod is not supported; launch with torchrun",
}


class WindowDone(Exception):
    """Raised into OpenCLIP's loop after the --window's last step: the run has nothing more to
    record."""


def model_flag(flags):
    """Registers a --model given as a JSON path with OpenCLIP and passes its stem instead."""
    import open_clip
    out = list(flags)
    for i, f in enumerate(out):
        value, j = (f.split("=", 1)[1], None) if f.startswith("--model=") else (
            (out[i + 1], i + 1) if f == "--model" and i + 1 < len(out) else (None, None))
        if value and value.endswith(".json"):
            if not os.path.isfile(value):
                raise RecordError(f"--model {value}: no such model-config file")
            open_clip.add_model_config(value)
            stem = os.path.splitext(os.path.basename(value))[0]
            if j is None:
                out[i] = "--model=" + stem
            else:
                out[j] = stem
    return out


def refuse(flags):
    for f in flags:
        name = f.split("=", 1)[0]
        if name in REFUSED:
            raise RecordError(f"{name}: {REFUSED[name]}")


def rank_path(out, rank, world):
    stem, ext = os.path.splitext(out)
    return f"{stem}.rank{rank}{ext or '.h5'}" if world > 1 else out


class Recorder:
    def __init__(self, a, argv_flags, zero_shot):
        self.a, self.flags, self.zero_shot = a, argv_flags, zero_shot
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.path = rank_path(a.out, self.rank, self.world)
        self.steps = StepSelection(a)
        self.writer = self.capture = self.tracer = None
        self.step, self.traced = 0, {}

    def entry_mode(self, name, in_forward=False):
        """How a tensor of the step being recorded is logged (record_steps.StepSelection.mode).
        The forward pass belongs to the step after the last one taken."""
        return self.steps.mode(name, self.step + 1 if in_forward else self.step)

    def start(self, model, data, loss, optimizer, scaler, args, epoch):
        import open_clip
        from open_clip_train.train import unwrap_model

        from .fingerprint import fingerprint, git_commit
        from .log_write import LogWriter
        from .openclip_capture import StepCapture
        self.args = args
        dl = data["train"].dataloader
        if not isinstance(dl, (RecordingDataLoader, RecordingWebLoader)):
            raise RecordError(f"--dataset-type {args.dataset_type}: the recorder knows OpenCLIP's "
                              "csv, synthetic and webdataset loaders, not this one")
        steps_per_epoch = dl.num_batches // args.accum_freq
        last_step = steps_per_epoch * args.epochs
        self.step = steps_per_epoch * epoch  # past 0 after OpenCLIP's --resume
        self.steps.begin(self.step, last_step)
        here = os.path.dirname(os.path.abspath(__file__))
        config = {"world-size": self.world, "train-num-samples": dl.num_samples,
                  "batch-size": args.batch_size, "epochs": args.epochs,
                  "accum-freq": args.accum_freq, "precision": args.precision,
                  "seed": args.seed, "total-steps": last_step,
                  "steps-per-epoch": steps_per_epoch}
        provenance = {
            "scenario_name": os.path.splitext(os.path.basename(self.a.out))[0],
            "scenario_path": "", "scenario_toml": "",  # not a cliprepro run: nothing to re-run
            "recorded_by": "python -m cliprepro.record",
            "openclip_version": open_clip.__version__,
            "openclip_argv": json.dumps(self.flags),
            "openclip_cwd": os.getcwd(),  # what relative paths in the flags are relative to
            "openclip_args": json.dumps(vars(args), default=str, indent=2, sort_keys=True),
            "resolved_config": json.dumps(config, indent=2, sort_keys=True),
            "model_config": json.dumps(open_clip.get_model_config(args.model), indent=4),
            "fingerprint": json.dumps(fingerprint({"git_commit": git_commit(here)}), indent=2),
            "git_commit": git_commit(here),
            "created_utc": datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ"),
            "step_numbering": "step 0 = initial state; step s >= 1 = forward/backward on batch "
                              "s-1 and the s-th optimizer update",
            "recorded_steps": json.dumps({"state": self.steps.start_step,
                                          "first": self.steps.first, "end": self.steps.end,
                                          "resumed_at": self.step}),
            "skipped_samples": "[]", "debug_flip": "null",
        }
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self.writer_fingerprint = provenance["fingerprint"]
        self.writer = LogWriter(self.path, provenance, self.steps.may_store)
        self.capture = StepCapture(unwrap_model(model), loss, optimizer, scaler, self.entry_mode)
        if self.steps.start_step == self.step:  # else the state before the window, when reached
            self.capture.eval = self.initial_eval(model, data, args)
            self.writer.write_step(self.step, self.capture.state_entries(self.step > 0))

    def initial_eval(self, model, data, args):
        """cliprepro logs the zero-shot eval of the initial state too (step 0). OpenCLIP makes
        none, so the recorder runs OpenCLIP's zero_shot_eval once with the random state put back
        afterwards: iterating the ImageNet loader draws a seed from the global generator."""
        import torch
        from open_clip_train.distributed import is_master
        from open_clip_train.zero_shot import zero_shot_eval
        if "imagenet-val" not in data or not args.zeroshot_frequency or not is_master(args):
            return []
        devices = [torch.cuda.current_device()] if torch.device(args.device).type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            model.eval()
            metrics = zero_shot_eval(model, data, 0, args)
            model.train()
        return self.zero_shot.entries(metrics)

    def on_batch(self, i, ids, batch, keys=None):
        if i % self.args.accum_freq == 0:
            self.finish_step()
            if self.steps.done(self.step):
                raise WindowDone()
            if self.step + 1 in self.a.trace_steps:  # the step this batch starts
                from .op_trace import OpTraceForRecorder
                self.tracer = OpTraceForRecorder(self.capture.model, self.capture.optimizer)
        self.capture.add_batch(ids, batch, keys)

    def finish_step(self):
        """Writes the step just taken (after its logit_scale clamp); drops micro-batches that
        made no step (OpenCLIP's leftovers when an epoch is not a multiple of accum-freq)."""
        if self.tracer is not None:
            self.traced[self.step + 1] = self.tracer.stop()
            self.tracer = None
        if self.capture.step_done:
            self.step += 1
            if self.steps.trains(self.step):
                self.writer.write_step(self.step, self.capture.step_entries())
            elif self.step == self.steps.start_step:
                self.writer.write_step(self.step, self.capture.state_entries(with_moments=True))
        self.capture.new_step()

    def train_one_epoch(self, original):
        """The epoch's last step is written by the next epoch's first batch or at the end of the
        run, after evaluate() has added its zero-shot result to it."""
        def wrapped(model, data, loss, epoch, optimizer, scaler, scheduler, dist_model, args,
                    tb_writer=None):
            if self.writer is None:
                self.start(model, data, loss, optimizer, scaler, args, epoch)
            data["train"].dataloader.on_batch = self.on_batch
            return original(model, data, loss, epoch, optimizer, scaler, scheduler, dist_model,
                            args, tb_writer=tb_writer)
        return wrapped

    def evaluate(self, original):
        def wrapped(model, data, epoch, args, tb_writer=None, tokenizer=None):
            metrics = original(model, data, epoch, args, tb_writer=tb_writer, tokenizer=tokenizer)
            if self.capture is not None:
                self.capture.eval = self.zero_shot.entries(metrics)
            return metrics
        return wrapped

    def write_trace(self):
        missing = sorted(set(self.a.trace_steps) - set(self.traced))
        if missing:
            raise RecordError(f"--trace-steps {missing}: the run has {self.step} steps")
        out = self.a.trace_out or rank_path(os.path.splitext(self.a.out)[0] + ".trace.h5",
                                            self.rank, self.world)
        from .op_trace import write_trace
        write_trace(out, self.traced, {"scenario_name": os.path.basename(self.a.out),
                                       "recorded_by": "python -m cliprepro.record",
                                       "openclip_argv": json.dumps(self.flags),
                                       "fingerprint": self.writer_fingerprint})
        print(f"traced steps {sorted(self.traced)} to {out}")

    def write_manifest(self):
        stem = os.path.splitext(os.path.basename(self.a.out))[0]
        args = self.args
        m = {"scenario": stem, "world_size": self.world, "recorded_by": "cliprepro.record",
             "dist_backend": args.dist_backend, "local_loss": args.local_loss,
             "gather_with_grad": args.gather_with_grad,
             "logs": [os.path.basename(rank_path(self.a.out, r, self.world))
                      for r in range(self.world)],
             "created_utc": datetime.datetime.now(datetime.timezone.utc).strftime(
                 "%Y-%m-%dT%H:%M:%SZ")}
        path = os.path.join(os.path.dirname(os.path.abspath(self.a.out)), stem + ".manifest.json")
        with open(path + ".tmp", "w") as f:
            json.dump(m, f, indent=2)
        os.replace(path + ".tmp", path)


def recording_loader_class():
    import torch.utils.data

    class RecordingDataLoader(torch.utils.data.DataLoader):
        """OpenCLIP's DataLoader, also telling the recorder which sample ids each batch holds (the
        sampler's index lists, in the order the loader delivers batches, any worker count)."""
        on_batch = None

        @property
        def _index_sampler(self):
            inner = super()._index_sampler
            pending = getattr(self, "_pending", None)  # None: asked for len(), not iterating
            return inner if pending is None else _RecordingIndices(inner, pending)

        def __iter__(self):
            self._pending = collections.deque()
            for i, batch in enumerate(super().__iter__()):
                ids = self._pending.popleft()
                if self.on_batch is not None:
                    self.on_batch(i, ids, batch)
                yield batch

    return RecordingDataLoader


class _RecordingIndices:
    def __init__(self, inner, pending):
        self.inner, self.pending = inner, pending

    def __len__(self):
        return len(self.inner)

    def __iter__(self):
        for ids in self.inner:
            self.pending.append(list(ids))
            yield ids


RecordingDataLoader = None


def allow_cpu_ddp():
    """OpenCLIP 3.3.0's main passes device_ids=[device] to DistributedDataParallel, which PyTorch
    refuses for a CPU module, so OpenCLIP cannot train distributed on CPUs. For a CPU module the
    recorder drops device_ids (what DDP's documentation asks for); nothing else changes."""
    import torch
    ddp = torch.nn.parallel.DistributedDataParallel

    class CpuDeviceIdsDropped(ddp):
        def __init__(self, module, device_ids=None, *args, **kwargs):
            if device_ids and all(torch.device(d).type == "cpu" for d in device_ids):
                device_ids = None
            super().__init__(module, device_ids, *args, **kwargs)
    torch.nn.parallel.DistributedDataParallel = CpuDeviceIdsDropped


class ZeroShotCapture:
    """The classifier and logits of OpenCLIP's zero_shot_eval (open_clip_train/zero_shot.py), by
    wrapping the two functions it calls: cliprepro logs them beside top-1/top-5, so the eval is
    compared bit by bit rather than by two accuracies.

    Its accuracy() is also why the wrapper replaces rather than calls it: OpenCLIP 3.3.0 turns a
    one-element array into a number with float(), which NumPy 2.4 refuses (TypeError: only
    0-dimensional arrays can be converted), so its --imagenet-val cannot run with the project's
    NumPy. The copy takes the element: the same count from the same ops."""

    def __init__(self):
        import open_clip_train.zero_shot as zs
        self.classifier, self.logits = None, []
        build = zs.build_zero_shot_classifier

        def build_zero_shot_classifier(*args, **kwargs):
            self.classifier, self.logits = build(*args, **kwargs), []
            return self.classifier

        def accuracy(output, target, topk=(1,)):
            self.logits.append(output.detach().clone())
            pred = output.topk(max(topk), 1, True, True)[1].t()
            correct = pred.eq(target.view(1, -1).expand_as(pred))
            return [float(correct[:k].reshape(-1).float().sum(0, keepdim=True).cpu().numpy()[0])
                    for k in topk]
        zs.build_zero_shot_classifier, zs.accuracy = build_zero_shot_classifier, accuracy

    def entries(self, metrics):
        """OpenCLIP's --imagenet-val result as cliprepro's eval/* tensors (none without one)."""
        import torch
        if "imagenet-zeroshot-val-top1" not in metrics:
            return []
        return [("eval/zeroshot_top1",
                 torch.tensor(float(metrics["imagenet-zeroshot-val-top1"]), dtype=torch.float64)),
                ("eval/zeroshot_top5",
                 torch.tensor(float(metrics["imagenet-zeroshot-val-top5"]), dtype=torch.float64)),
                ("eval/zeroshot_classifier", self.classifier), ("eval/zeroshot_logits",
                                                                torch.cat(self.logits))]


def main(argv=None):
    global RecordingDataLoader
    argv = sys.argv[1:] if argv is None else argv
    try:
        a, flags = parse(argv, __doc__.split("\n\n")[0])
        refuse(flags)
        from open_clip_train.params import parse_args as openclip_parse_args
        openclip_parse_args(flags)  # a flag OpenCLIP does not know: its parser names it, exit 2
        check_data_paths(flags)
        import torch
        if a.threads:
            torch.set_num_threads(a.threads)
        openclip_flags, logs = with_logs_default(model_flag(flags), a.out)
        if logs and os.environ.get("RANK", "0") == "0":
            print(f"OpenCLIP's logs and checkpoints go to {logs} (give --logs to choose)")
        import open_clip_train.data
        import open_clip_train.main as oc_main
        RecordingDataLoader = recording_loader_class()
        open_clip_train.data.DataLoader = RecordingDataLoader
        record_webdataset()
        allow_cpu_ddp()
        rec = Recorder(a, flags, ZeroShotCapture())
        oc_main.train_one_epoch = rec.train_one_epoch(oc_main.train_one_epoch)
        oc_main.evaluate = rec.evaluate(oc_main.evaluate)
        try:
            oc_main.main(openclip_flags)
        except WindowDone:
            pass  # the window's last step is written: OpenCLIP's run stops there
        except BaseException as e:
            if rec.writer is not None:
                try:
                    rec.finish_step()  # the last complete step, if the failure came after it
                finally:
                    rec.writer.close("failed", f"{type(e).__name__}: {e}")
            raise
        # OpenCLIP set the root logger to INFO: keep torch's exit-time INFO statistics quiet.
        logging.getLogger("torch").setLevel(logging.WARNING)
        if rec.writer is None:
            raise RecordError("open_clip_train.main trained no step (no --train-data?)")
        rec.finish_step()
        rec.writer.close()
        if a.trace_steps:
            rec.write_trace()
        if rec.world > 1:
            torch.distributed.barrier() if torch.distributed.is_initialized() else None
            if rec.rank == 0:
                rec.write_manifest()
        s = rec.steps
        if s.start_step == 0 and s.end is None:
            print(f"recorded {rec.step} steps of open_clip_train.main to {rec.path}")
        else:
            print(f"recorded steps {s.first}-{rec.step} of open_clip_train.main, with the state "
                  f"of step {s.start_step} in full, to {rec.path}")
        return 0
    except RecordError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        from .log_write import LogWriterError  # not at the top: it imports torch and h5py
        if not isinstance(e, LogWriterError):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
