"""The recorder's command line (`python -m cliprepro.record`): its own options, and what it checks
and fills in among OpenCLIP's flags before OpenCLIP starts."""
import argparse
import os

OPENCLIP_FLAGS_HELP = """\
OpenCLIP's flags (after --) go to open_clip_train.main as they are, except:
  --logs DIR      when not given, OpenCLIP's logs and checkpoints (epoch_*.pt, tens of MB each)
                  go to <out without .h5>.openclip-logs/ beside the log, not to OpenCLIP's
                  default ./logs/ in the current directory (--logs none: none are written)
  --train-data, --val-data, --imagenet-val
                  checked before OpenCLIP starts: a missing or unreadable path is an error
                  (exit 2); brace patterns (shard-{000..009}.tar) need one existing file and
                  URLs / pipe: sources are left to webdataset"""
# OpenCLIP's path flags, and whether each names a directory (ImageNet's ImageFolder).
DATA_FLAGS = {"--train-data": False, "--val-data": False, "--imagenet-val": True}


class RecordError(Exception):
    pass


def parse(argv, description):
    """(the recorder's options, OpenCLIP's flags): the two sides of `--`."""
    cut = argv.index("--") if "--" in argv else len(argv)
    ap = argparse.ArgumentParser(prog="python -m cliprepro.record", description=description,
                                 epilog=OPENCLIP_FLAGS_HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="the log (.h5); under torchrun one per rank")
    ap.add_argument("--full-tensors", nargs="*", default=[], metavar="GLOB")
    ap.add_argument("--full-steps", nargs="*", default=["0:"], metavar="SPEC")
    ap.add_argument("--digest-every", type=int, default=1, metavar="N",
                    help="digests and statistics of every tensor at steps divisible by N (the "
                         "[log] digest-every key; default 1); stored tensors are digested "
                         "whenever they are stored")
    ap.add_argument("--window", metavar="A:B",
                    help="record only optimizer steps A <= s < B (B may be left out: to the "
                         "end), beside the state before them in full (params, buffers, AdamW "
                         "moments, GradScaler: step A-1); the run stops after step B-1. With "
                         "OpenCLIP's --resume, step numbers continue from its checkpoint")
    ap.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--trace-steps", nargs="*", type=int, default=[], metavar="S",
                    help="also trace every ATen op of these optimizer steps (docs/trace.md)")
    ap.add_argument("--trace-out", help="the trace file (default: <out stem>.trace.h5)")
    options = ap.parse_args(argv[:cut])  # --help exits here, with or without `--`
    if options.digest_every < 1:
        raise RecordError(f"--digest-every {options.digest_every}: must be at least 1")
    options.window = parse_window(options.window)
    if cut == len(argv):
        raise RecordError("usage: python -m cliprepro.record --out LOG.h5 [options] -- "
                          "<open_clip_train.main flags>")
    return options, argv[cut + 1:]


def parse_window(spec):
    """(A, B or None) of --window A:B (1 <= A < B); None without one."""
    if spec is None:
        return None
    parts = spec.split(":")
    try:
        if len(parts) != 2 or not parts[0]:
            raise ValueError
        a, b = int(parts[0]), int(parts[1]) if parts[1] else None
    except ValueError:
        raise RecordError(f"--window {spec!r}: give A:B or A: (optimizer steps, A >= 1)") from None
    if a < 1 or (b is not None and b <= a):
        raise RecordError(f"--window {spec!r}: needs 1 <= A < B (steps A..B-1 are recorded)")
    return a, b


def flag_value(flags, name):
    """The value of the last `name V` or `name=V` among OpenCLIP's flags; None if absent."""
    value = None
    for i, f in enumerate(flags):
        if f == name and i + 1 < len(flags):
            value = flags[i + 1]
        elif f.startswith(name + "="):
            value = f.split("=", 1)[1]
    return value


def with_logs_default(flags, out):
    """(OpenCLIP's flags, the --logs directory added): --logs beside the log unless the user gave
    one (then None is returned for the directory). OpenCLIP's own default, ./logs/, filled the
    directory the recorder was started from with checkpoints."""
    if flag_value(flags, "--logs") is not None:
        return list(flags), None
    logs = os.path.splitext(os.path.abspath(out))[0] + ".openclip-logs"
    return list(flags) + ["--logs", logs], logs


def _problem(path, directory):
    """Why OpenCLIP could not read `path` (None if it can)."""
    if not os.path.exists(path):
        return "no such directory" if directory else "no such file"
    if os.path.isdir(path) != directory:
        return "not a directory" if directory else "is a directory, not a file"
    if not os.access(path, os.R_OK | (os.X_OK if directory else 0)):
        return "not readable (permissions)"
    return None


def check_data_paths(flags):
    """Raises RecordError naming the first --train-data / --val-data / --imagenet-val path that
    OpenCLIP would fail on (pandas' traceback, minutes into the run, otherwise)."""
    if flag_value(flags, "--dataset-type") == "synthetic":
        return  # OpenCLIP reads no data
    for name, directory in DATA_FLAGS.items():
        value = flag_value(flags, name)
        if value is None:
            continue
        for source in value.split("::"):  # webdataset's separator of several sources
            if "://" in source or source.startswith("pipe:"):
                continue  # remote or piped shards: webdataset opens them
            if "{" in source:
                import braceexpand  # OpenCLIP expands shard patterns with it
                paths = list(braceexpand.braceexpand(source))
                if not any(_problem(p, directory) is None for p in paths):
                    raise RecordError(f"{name} {source}: none of its {len(paths)} files "
                                      "exists or is readable")
                continue
            problem = _problem(source, directory)
            if problem:
                raise RecordError(f"{name} {source}: {problem}")
