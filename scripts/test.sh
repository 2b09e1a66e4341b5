#!/usr/bin/env bash
# Sets up if needed, builds, and runs every test through CTest (CTest prints the summary).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "${CLIPREPRO_ROOT}"
start=$(date +%s)
bash scripts/setup.sh
# One test per core: a tiny-model training keeps about 1.1 of its 2 intra-op threads busy and
# OpenMP waits passively (harness/cli/main.cpp, tests/CMakeLists.txt), so two at once on 2 cores
# take 44 s where one after the other took 80 s (two seed-study base runs). Bits do not depend
# on it: every training pins its own thread count. CLIPREPRO_TEST_JOBS overrides.
ctest --test-dir build --output-on-failure -j "${CLIPREPRO_TEST_JOBS:-$(nproc)}" "$@"
echo "[test] setup + build + tests took $(( $(date +%s) - start )) s"
