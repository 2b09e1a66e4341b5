"""Reads every dataset of a cliprepro log with h5py and re-digests every stored full tensor.

    python -m cliprepro.read LOG.h5

Exit 0 when every stored tensor hashes to its logged digest, 1 on a mismatch, 2 when the file is
not a readable log (missing, not HDF5, damaged: one line on stderr, no traceback). (`cliprepro
verify` is the C++ check; this one proves h5py reads the format.)
"""
import sys

from .log import Log, LogError


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        with Log(argv[0]) as log:
            datasets = log.read_every_dataset()
            log.config, log.fingerprint  # both must be JSON
            families = {}
            for name in log.names():
                families[name.split("/")[0]] = families.get(name.split("/")[0], 0) + 1
            checked = sum(len(log.full_steps(n)) for n in log.names())
            bad = log.verify()
            state = "complete" if log.complete else f"incomplete, last complete step {log.last_step}"
    except LogError as e:  # names the file
        print(f"error: {e}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"error: {argv[0]}: a dataset too large to read (damaged?)", file=sys.stderr)
        return 2
    for name, step in bad:
        print(f"digest mismatch: {name} step {step}")
    if bad:
        return 1
    print(f"{argv[0]} ({state}): {datasets} datasets read; tensors per family: {families}; "
          f"{checked} stored tensors re-digested, all equal to the logged digests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
