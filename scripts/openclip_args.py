#!/usr/bin/env python3
"""OpenCLIP's own reading of a command line, for `cliprepro import-openclip`.

    python openclip_args.py OUT.json -- <open_clip_train.main flags>

Runs open_clip_train.params.parse_args (OpenCLIP 3.3.0: its defaults, its per-model lr/betas/eps,
its --aug-cfg parsing) on the flags and on none, and writes both namespaces as JSON, with whether
CUDA is available (OpenCLIP's --device default is "cuda", used when available). A flag argparse
does not know exits 2 with argparse's message naming it.
"""
import json
import math
import sys


def main() -> int:
    if len(sys.argv) < 3 or sys.argv[2] != "--":
        print(__doc__.strip(), file=sys.stderr)
        return 2
    from open_clip_train.params import parse_args

    flags = sys.argv[3:]
    sys.argv[0] = "open_clip_train.main"  # argparse's messages name OpenCLIP's entry point
    args = vars(parse_args(flags))
    defaults = vars(parse_args([]))
    # argparse takes `--lr 1e999` as inf (and `nan`): no training means it, and JSON cannot hold it.
    for name, value in args.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            flag = "--" + name.replace("_", "-")
            print(f"open_clip_train.main: error: {flag} {value}: not a finite number", file=sys.stderr)
            return 2
    import torch

    with open(sys.argv[1], "w") as f:
        json.dump({"args": args, "defaults": defaults, "cuda": torch.cuda.is_available()}, f,
                  allow_nan=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
