"""The libhdf5 h5py runs on (its wheel bundles its own), for the few calls h5py does not wrap."""
import ctypes
import functools

import h5py  # noqa: F401  (loads the libhdf5 looked up below)


@functools.lru_cache(maxsize=None)
def libhdf5():
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if "/libhdf5" in path and "_hl" not in path and ".so" in path:
                lib = ctypes.CDLL(path)
                lib.H5Pset_link_phase_change.argtypes = [ctypes.c_int64, ctypes.c_uint,
                                                         ctypes.c_uint]
                lib.H5Pset_metadata_read_attempts.argtypes = [ctypes.c_int64, ctypes.c_uint]
                return lib
    raise RuntimeError("cannot find the libhdf5 h5py loaded")
