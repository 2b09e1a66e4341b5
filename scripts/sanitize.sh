#!/usr/bin/env bash
# Builds the tests under ASan + UBSan (the sanitize preset: clang, build-sanitize/) and runs the
# faster half of them, as the default build last timed them (build/Testing/Temporary/
# CTestCostData.txt, written by scripts/test.sh), or the tests matching a CTest regex.
#
#   bash scripts/sanitize.sh [CTEST_REGEX]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "${CLIPREPRO_ROOT}"
install_debian_packages "${CLIPREPRO_SANITIZE_PACKAGES[@]}"
[ -x "${CLIPREPRO_PYTHON}" ] || bash scripts/setup.sh cliprepro
export CLIPREPRO_TORCH_PREFIX="$("${CLIPREPRO_PYTHON}" -c 'import torch; print(torch.utils.cmake_prefix_path)')"
[ -f build-sanitize/CMakeCache.txt ] ||
  cmake --preset sanitize -DCLIPREPRO_PYTHON="${CLIPREPRO_PYTHON}" >/dev/null
cmake --build build-sanitize -j2 --target cliprepro dist_worker cliprepro_tests
if (($#)); then
  regex=$1
else
  costs=build/Testing/Temporary/CTestCostData.txt
  [ -f "${costs}" ] || { echo "no ${costs}: run bash scripts/test.sh once first" >&2; exit 2; }
  # Lines "name runs seconds" up to the "---" separator; the faster half by seconds.
  names=$(awk '/^---/{exit} NF==3{print $3, $1}' "${costs}" | sort -n |
    awk '{n[NR]=$2} END{for(i=1;i<=int(NR/2);i++) print n[i]}')
  # Test names are [A-Za-z0-9_.]: only the dots need escaping.
  regex="^($(echo "${names}" | sed 's/\./\\./g' | paste -sd'|'))\$"
fi
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=${CLIPREPRO_ROOT}/tests/fuzz/lsan.supp"
export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer || true)}"
ctest --test-dir build-sanitize --output-on-failure -j "${CLIPREPRO_TEST_JOBS:-$(nproc)}" -R "${regex}"
