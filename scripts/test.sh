#!/usr/bin/env bash
# Sets up if needed, builds, and runs every test through CTest (CTest prints the summary).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "${CLIPREPRO_ROOT}"
start=$(date +%s)
bash scripts/setup.sh
ctest --test-dir build --output-on-failure -j2 "$@"
echo "[test] setup + build + tests took $(( $(date +%s) - start )) s"
