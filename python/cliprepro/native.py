"""The log's digest and statistics as cliprepro's C++ log writer computes them, for the recorder:
one implementation (harness/log/host_digest.h), loaded from the C library scripts/setup.sh builds
and installs beside this package (libcliprepro_digest.so).

Where the tensor lives: a CPU tensor is read in place (no copy); a tensor on a device is reduced
there, as the C++ writer does on CUDA. Its digest takes the block route (harness/log/
device_digest.h): per-1-KiB-block lane sums in tensor ops on the device, then the sequential
end of XXH3 on the host over those sums (1/16 of the bytes) and the tail. Its statistics are
float64 reductions on the device; 8 numbers cross to the host.
"""
import ctypes
import os

import numpy as np
import torch

# host_digest.h's ElemKind codes.
KINDS = {torch.float32: 0, torch.float64: 1, torch.float16: 2, torch.bfloat16: 3, torch.int64: 4,
         torch.int32: 5, torch.uint8: 6, torch.bool: 7}
LIBRARY = "libcliprepro_digest.so"
_BLOCK, _STRIPES, _MIDSIZE_MAX = 1024, 16, 240  # XXH3's block, stripes per block, short inputs
_CHUNK = 8192  # blocks per device reduction: bounds the temporaries, as device_digest.cpp does
_u64p, _f64p = ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_double)


def _load():
    path = os.environ.get("CLIPREPRO_DIGEST_LIBRARY") or os.path.join(os.path.dirname(__file__),
                                                                      LIBRARY)
    if not os.path.isfile(path):
        raise RuntimeError(f"{path} is missing: scripts/setup.sh builds cliprepro's digest "
                           "library and installs it beside the cliprepro package")
    lib = ctypes.CDLL(path)  # ctypes releases the GIL during each call
    lib.cliprepro_digest_stats.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32,
                                           ctypes.c_int32, ctypes.c_int32, _u64p, _f64p]
    lib.cliprepro_digest_stats_many.argtypes = [
        ctypes.c_int64, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_int64),
        ctypes.POINTER(ctypes.c_int32),
        ctypes.c_int32, ctypes.c_int32, _u64p, _f64p]
    lib.cliprepro_xxh3_block_keys.argtypes = [_u64p]
    lib.cliprepro_xxh3_from_lane_sums.argtypes = [_u64p, ctypes.c_int64, ctypes.c_void_p,
                                                  ctypes.c_int64, ctypes.c_int64]
    lib.cliprepro_xxh3_from_lane_sums.restype = ctypes.c_uint64
    return lib


_lib = None
_keys = {}  # device -> the block keys there


def library():
    global _lib
    if _lib is None:
        _lib = _load()
    return _lib


def _kind(t):
    try:
        return KINDS[t.dtype]
    except KeyError:
        raise ValueError(f"no log dtype for torch {t.dtype}") from None


def _host(t):
    """A CPU tensor's contiguous form (itself when it already is)."""
    return t.detach().contiguous()


def digest_stats(t, with_stats=True, baseline=False):
    """(digest, 8 statistics in the log's column order) of one tensor, where it lives."""
    if t.device.type != "cpu":
        return device_digest(t), (device_stats(t) if with_stats else np.zeros(8))
    h = _host(t)
    digest, stats = ctypes.c_uint64(), np.zeros(8)
    if library().cliprepro_digest_stats(h.data_ptr(), h.numel(), _kind(h), int(with_stats),
                                        int(baseline), ctypes.byref(digest),
                                        stats.ctypes.data_as(_f64p)) != 0:
        raise ValueError(f"cannot digest a {h.dtype} tensor")
    return digest.value, stats


def digest_stats_many(tensors, with_stats=True, threads=None):
    """digest_stats of each tensor; the CPU ones in one call on `threads` threads (default: torch's
    intra-op count), shared out by bytes as the C++ writer shares a step."""
    out = [None] * len(tensors)
    cpu = [i for i, t in enumerate(tensors) if t.device.type == "cpu"]
    for i, t in enumerate(tensors):
        if t.device.type != "cpu":
            out[i] = digest_stats(t, with_stats)
    if cpu:
        hosts = [_host(tensors[i]) for i in cpu]  # kept alive through the call
        n = len(hosts)
        data = (ctypes.c_void_p * n)(*[h.data_ptr() for h in hosts])
        numel = (ctypes.c_int64 * n)(*[h.numel() for h in hosts])
        kinds = (ctypes.c_int32 * n)(*[_kind(h) for h in hosts])
        digests, stats = np.zeros(n, np.uint64), np.zeros((n, 8))
        if library().cliprepro_digest_stats_many(
                n, data, numel, kinds, int(with_stats), int(threads or torch.get_num_threads()),
                digests.ctypes.data_as(_u64p), stats.ctypes.data_as(_f64p)) != 0:
            raise ValueError("cannot digest one of the tensors")
        for k, i in enumerate(cpu):
            out[i] = (int(digests[k]), stats[k])
    return out


def _block_keys(device):
    if device not in _keys:
        keys = np.zeros(_STRIPES * 8, np.uint64)
        library().cliprepro_xxh3_block_keys(keys.ctypes.data_as(_u64p))
        _keys[device] = torch.from_numpy(keys.view(np.int64)).view(_STRIPES, 8).to(device)
    return _keys[device]


def _lane_sums(words, keys):
    """What XXH3_accumulate_512 adds to each lane over each block's stripes: the 32x32->64 product
    of the keyed word's halves plus the neighbouring lane's raw word (uint64 arithmetic in int64:
    the same bits, wrapping). device_digest.cpp's block_lane_sums."""
    n = words.shape[0]
    w = words.view(n, _STRIPES, 8)
    keyed = torch.bitwise_xor(w, keys)
    lo = torch.bitwise_and(keyed, 0xFFFFFFFF)
    hi = torch.bitwise_and(torch.bitwise_right_shift(keyed, 32), 0xFFFFFFFF)
    swapped = w.view(n, _STRIPES, 4, 2).flip(-1).reshape(n, _STRIPES, 8)
    return (lo * hi + swapped).sum(1)


def device_digest(t):
    """XXH3-64 of a tensor's bytes by the block route, on the tensor's own device (the CPU too,
    which is how the tests check it against XXH3)."""
    flat = t.detach().contiguous().reshape(-1)
    length = flat.numel() * flat.element_size()
    if length <= _MIDSIZE_MAX:  # short inputs take another XXH3 path: digest them whole
        return digest_stats(flat.cpu(), with_stats=False)[0]
    data = flat.view(torch.uint8)
    blocks = (length - 1) // _BLOCK  # whole blocks; the rest (at least one byte) is the tail
    words = data[:blocks * _BLOCK].view(torch.int64).view(blocks, _BLOCK // 8)
    keys = _block_keys(flat.device)
    sums = [_lane_sums(words[b:b + _CHUNK], keys) for b in range(0, blocks, _CHUNK)]
    lane_sums = (torch.cat(sums) if sums else torch.zeros(0, 8, dtype=torch.int64,
                                                          device=flat.device)).cpu().contiguous()
    tail_start = min(blocks * _BLOCK, length - 64)
    tail = data[tail_start:].cpu().contiguous()
    return int(library().cliprepro_xxh3_from_lane_sums(
        ctypes.cast(lane_sums.data_ptr(), _u64p), blocks, tail.data_ptr(), tail_start, length))


def device_stats(t):
    """The statistics of a tensor reduced on its device in float64 (tensor_stats.cpp's
    device_stats): 8 numbers cross to the host."""
    x = t.detach().to(torch.float64).flatten()
    finite = x.isfinite()
    nan, inf, zero = x.isnan().sum(), x.isinf().sum(), x.eq(0).sum()
    xf = x.masked_select(finite)
    counts = [nan.to(torch.float64), inf.to(torch.float64), zero.to(torch.float64)]
    if xf.numel() > 0:
        mean = xf.mean()
        packed = torch.stack([xf.min(), xf.max(), mean, (xf - mean).pow(2).mean().sqrt(),
                              xf.pow(2).sum().sqrt()] + counts)
    else:
        nanv = torch.full((), float("nan"), dtype=torch.float64, device=x.device)
        packed = torch.stack([nanv, nanv, nanv, nanv, torch.zeros_like(nanv)] + counts)
    return packed.cpu().numpy()
