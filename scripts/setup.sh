#!/usr/bin/env bash
# Idempotent setup: Debian packages, the pinned torch wheel (in a venv outside the repo),
# then configure and build into build/. Safe to run again: it only does what is missing.
#
#   bash scripts/setup.sh [TARGET...]   (default: every target; the quickstart builds `cliprepro`)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "${CLIPREPRO_ROOT}"

install_debian_packages "${CLIPREPRO_DEBIAN_PACKAGES[@]}" "${CLIPREPRO_SANITIZE_PACKAGES[@]}"

if ! "${CLIPREPRO_PYTHON}" - <<PY 2>/dev/null
import importlib.metadata as m, sys
want = dict(s.split("==") for s in "${CLIPREPRO_PY_PACKAGES[*]}".split())
sys.exit(any(m.version(k) != v for k, v in want.items()))
PY
then
  echo "[setup] installing ${CLIPREPRO_PY_PACKAGES[*]} into ${CLIPREPRO_VENV} (once; several GB)"
  mkdir -p "${CLIPREPRO_HOME}"
  [ -x "${CLIPREPRO_PYTHON}" ] || python3 -m venv "${CLIPREPRO_VENV}"
  "${CLIPREPRO_PYTHON}" -m pip install -q --upgrade pip
  "${CLIPREPRO_PYTHON}" -m pip install -q --no-cache-dir "${CLIPREPRO_PY_PACKAGES[@]}"
fi

# The repo's Python package (python/: log reader, OpenCLIP recorder), reinstalled into the venv
# whenever its sources change (the venv is shared by every clone; tests import the tree itself).
py_hash="$(cat python/pyproject.toml python/cliprepro/*.py | sha256sum | cut -c1-16)"
if [ ! -f "${CLIPREPRO_VENV}/.cliprepro-python-${py_hash}" ]; then
  echo "[setup] installing python/ (package cliprepro) into ${CLIPREPRO_VENV}"
  "${CLIPREPRO_PYTHON}" -m pip install -q --no-deps ./python
  rm -rf python/build python/cliprepro.egg-info "${CLIPREPRO_VENV}"/.cliprepro-python-*
  touch "${CLIPREPRO_VENV}/.cliprepro-python-${py_hash}"
fi

TORCH_PREFIX="$("${CLIPREPRO_PYTHON}" -c 'import torch; print(torch.utils.cmake_prefix_path)')"
export CLIPREPRO_TORCH_PREFIX="${TORCH_PREFIX}"
# A build/ configured by an older setup (Unix Makefiles) cannot be reused by the Ninja preset.
if [ -f build/CMakeCache.txt ] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' build/CMakeCache.txt; then
  echo "[setup] build/ was configured with another generator; reconfiguring from scratch"
  rm -rf build
fi
if [ ! -f build/CMakeCache.txt ]; then
  echo "[setup] configuring build/"
  cmake --preset default -DCLIPREPRO_PYTHON="${CLIPREPRO_PYTHON}" >/dev/null
fi
targets=()
for t in "$@"; do targets+=(--target "$t"); done
echo "[setup] building ${*:-every target} (2 jobs)"
cmake --build build -j2 "${targets[@]}"

# The recorder's digest library (python/cliprepro/native.py: cliprepro's own digest and
# statistics code) goes beside the installed package, refreshed whenever the build changes it.
if [ -f build/libcliprepro_digest.so ]; then
  pkg_dir="$("${CLIPREPRO_PYTHON}" -c 'import cliprepro, os; print(os.path.dirname(cliprepro.__file__))')"
  if ! cmp -s build/libcliprepro_digest.so "${pkg_dir}/libcliprepro_digest.so"; then
    echo "[setup] installing libcliprepro_digest.so into ${pkg_dir}"
    install -m 0755 build/libcliprepro_digest.so "${pkg_dir}/libcliprepro_digest.so"
  fi
fi
