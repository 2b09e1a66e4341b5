"""The recorder's observer effect (test RecordOpenClip.RecordingChangesNoBitOfTheRun):

    observer_effect.py plain T FLAGS... open_clip_train.main with FLAGS on T intra-op threads,
                                        as `python -m cliprepro.record --threads T` would run it
                                        (a --model JSON path is registered with OpenCLIP the
                                        same way), nothing recorded
    observer_effect.py record ARGS...   python -m cliprepro.record ARGS, in this process
    observer_effect.py equal A.pt B.pt  exit 0 when two OpenCLIP checkpoints hold the same
                                        values bit for bit (model, optimizer, scaler; every
                                        tensor's dtype, shape and bytes), 1 naming the first
                                        difference

--pin-shuffle before plain or record: webdataset's sample shuffle buffer draws from
random.Random(0). OpenCLIP gives it no seed, so webdataset seeds it from the process id and the
clock, and two processes never make the same WebDataset run; pinned in both, they can. The
recorder itself never pins it: it records whatever order the run drew.
"""
import sys

import torch


def bits(t):
    """A tensor's bytes (so -0.0 differs from 0.0 and a NaN equals only itself)."""
    return t.detach().contiguous().reshape(-1).view(torch.uint8)


def differences(a, b, path="checkpoint"):
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            yield f"{path}: keys {sorted(map(str, a.keys() ^ b.keys()))} on one side only"
            return
        for k in a:
            yield from differences(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            yield f"{path}: {len(a)} vs {len(b)} items"
            return
        for i, (x, y) in enumerate(zip(a, b)):
            yield from differences(x, y, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.dtype != b.dtype or a.shape != b.shape:
            yield f"{path}: {a.dtype}{tuple(a.shape)} vs {b.dtype}{tuple(b.shape)}"
        elif not torch.equal(bits(a), bits(b)):
            yield f"{path}: values differ"
    elif a != b:
        yield f"{path}: {a!r} vs {b!r}"


def pin_webdataset_shuffle():
    import random

    import webdataset
    import webdataset.filters as f

    def pinned(data, bufsize=1000, initial=100, rng=None, handler=None):
        return f._shuffle(data, bufsize, initial, rng or random.Random(0), handler)
    webdataset.shuffle = f.pipelinefilter(pinned)  # open_clip_train.data calls wds.shuffle


def main(argv):
    if argv[:1] == ["--pin-shuffle"]:
        pin_webdataset_shuffle()
        argv = argv[1:]
    if argv[:1] == ["record"]:
        from cliprepro.record import main as record
        return record(argv[1:])
    if argv[:1] == ["plain"] and len(argv) > 2:
        import open_clip_train.main as oc_main
        from cliprepro.record import model_flag
        torch.set_num_threads(int(argv[1]))
        oc_main.main(model_flag(argv[2:]))
        return 0
    if argv[:1] == ["equal"] and len(argv) == 3:
        a, b = (torch.load(p, map_location="cpu", weights_only=False) for p in argv[1:])
        diff = next(differences(a, b), None)
        if diff:
            print(f"DIFFER: {diff}")
            return 1
        print(f"EQUAL: {argv[1]} and {argv[2]}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
