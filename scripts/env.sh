# Shared settings for the scripts (sourced, not run).
# LibTorch = the PyPI torch wheel, pinned. 2.11.0's default PyPI build is CUDA 13 (cu130),
# the major of this machine's toolkit, and the same version the lent GPU machines carry.
CLIPREPRO_TORCH_VERSION="2.11.0"
# Python packages beside torch: h5py/numpy/xxhash read logs and recompute digests.
# open_clip_torch (+ its dependencies, pinned) is the parity reference: scripts/openclip_reference.py,
# and its wheel carries CLIP's BPE vocabulary (bpe_simple_vocab_16e6.txt.gz) that our tokenizer reads.
# ml_dtypes: the log reader (python/cliprepro) returns bfloat16 as ml_dtypes.bfloat16.
# braceexpand, webdataset, pandas (+ PyYAML, python-dateutil): open_clip_train.data imports them;
# the recorder (python -m cliprepro.record) runs open_clip_train.main. webdataset 0.2.86 is the
# newest open_clip_torch[training] allows (<=0.2.86): with 1.x, whose tar_file_expander yields an
# end-of-shard marker, OpenCLIP's group_by_keys_nothrow stops at KeyError 'fname'.
CLIPREPRO_PY_PACKAGES=("torch==${CLIPREPRO_TORCH_VERSION}" "numpy==2.4.6" "h5py==3.16.0" "xxhash==4.1.0"
  "open_clip_torch==3.3.0" "torchvision==0.26.0" "timm==1.0.31" "safetensors==0.8.0" "ftfy==6.3.1"
  "regex==2026.9.29" "huggingface_hub==2.4.0" "tqdm==4.70.1" "pillow==13.0.0" "ml_dtypes==0.6.0"
  "braceexpand==0.1.7" "webdataset==0.2.86" "pandas==3.1.1" "PyYAML==6.0.4" "python-dateutil==4.0.0")
# Installed once, outside the repo, and reused (several GB).
CLIPREPRO_HOME="${CLIPREPRO_HOME:-/opt/cliprepro}"
CLIPREPRO_VENV="${CLIPREPRO_VENV:-${CLIPREPRO_HOME}/venv-torch-${CLIPREPRO_TORCH_VERSION}}"
CLIPREPRO_PYTHON="${CLIPREPRO_VENV}/bin/python"
# libgloo-dev: headers only — torch's ProcessGroupGloo.hpp includes gloo headers the wheel does not
# ship (gloo's code itself is inside libtorch_cpu.so; Debian's libgloo is not linked).
# libxml2-utils: xmllint, which validates compare's JUnit output against tests/data/junit.xsd.
# libssl-dev: SHA-256 of goldens (their text companion records it).
# qemu-user: qemu-x86_64 runs cliprepro as other vendors' CPUs (the portable_* tests).
CLIPREPRO_DEBIAN_PACKAGES=(
  build-essential cmake ninja-build pkg-config git python3-venv
  libhdf5-dev hdf5-tools libcli11-dev libtomlplusplus-dev nlohmann-json3-dev libxxhash-dev
  libgtest-dev libgmock-dev libbenchmark-dev libpng-dev libjpeg62-turbo-dev libicu-dev zlib1g-dev libgloo-dev clang-format
  libxml2-utils libssl-dev qemu-user
)
# The sanitize preset and the fuzz targets (scripts/fuzz.sh, scripts/sanitize.sh; CI runs the
# fuzz targets): clang, its sanitizer and libFuzzer runtimes, llvm-symbolizer for stacks.
CLIPREPRO_SANITIZE_PACKAGES=(clang libclang-rt-14-dev llvm)
# Installs (apt-get) whichever of the given Debian packages is missing.
install_debian_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  echo "[setup] installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}
CLIPREPRO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
