"""The environment fingerprint of a Python process, with the keys cliprepro's C++ fingerprint uses
where they mean the same thing (harness/log/env_fingerprint.cpp), so `compare` and reports read
both alike."""
import os
import platform
import subprocess

PINNING_ENV = ("ATEN_CPU_CAPABILITY", "CUBLAS_WORKSPACE_CONFIG", "MKL_CBWR", "MKL_NUM_THREADS",
               "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "ONEDNN_MAX_CPU_ISA")
ISA_FLAGS = ("sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
             "avx512dq", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16",
             "amx_int8", "avx_vnni")


def cpu_info():
    vendor, model, flags = "", "", []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "vendor_id" and not vendor:
                    vendor = value
                if key == "model name" and not model:
                    model = value
                if key == "flags" and not flags:
                    have = set(value.split())
                    flags = [x for x in ISA_FLAGS if x in have]
    except OSError:
        pass
    return {"vendor": vendor, "model": model, "isa_flags": flags, "arch": platform.machine(),
            "logical_cores": os.cpu_count()}


def git_commit(path):
    try:
        sha = subprocess.run(["git", "-C", path, "rev-parse", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", path, "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True).stdout
        return sha + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def fingerprint(extra):
    import torch
    cuda = {"available": torch.cuda.is_available()}
    if cuda["available"]:
        cuda.update(device_count=torch.cuda.device_count(), cudart_version=torch.version.cuda,
                    cudnn_version=torch.backends.cudnn.version(),
                    devices=[torch.cuda.get_device_name(i)
                             for i in range(torch.cuda.device_count())])
    return {
        "producer": "cliprepro.record (Python)",
        "device": "cuda" if cuda["available"] else "cpu",
        "torch_version": torch.__version__.split("+")[0],
        "python_version": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu": cpu_info(),
        "cuda": cuda,
        "mkl_available": torch.backends.mkl.is_available(),
        "mkldnn_available": torch.backends.mkldnn.is_available(),
        "determinism": {
            "aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "intra_op_threads": torch.get_num_threads(),
            "inter_op_threads": torch.get_num_interop_threads(),
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "allow_tf32_cublas": torch.backends.cuda.matmul.allow_tf32,
            "allow_tf32_cudnn": torch.backends.cudnn.allow_tf32,
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "mkldnn_enabled": torch.backends.mkldnn.enabled,
            "env": {k: os.environ.get(k) for k in PINNING_ENV},
        },
        **extra,
    }
