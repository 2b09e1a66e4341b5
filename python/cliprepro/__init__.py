"""cliprepro's Python side: `Log` reads cliprepro's HDF5 logs (docs/hdf5-layout.md) with the
stored bits intact, and `python -m cliprepro.record` runs OpenCLIP's own trainer and writes the
same log format, so `cliprepro compare` can compare a real OpenCLIP run with anything."""
from .log import Log, LogError

__all__ = ["Log", "LogError"]
