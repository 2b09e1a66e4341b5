#!/usr/bin/env bash
# Sets up if needed, builds, and runs every test through CTest (CTest prints the summary).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "${CLIPREPRO_ROOT}"
start=$(date +%s)
bash scripts/setup.sh
# Serial: each training test uses both cores (2 intra-op threads); running two at once
# oversubscribes them and OpenMP spin-waits make both crawl.
ctest --test-dir build --output-on-failure "$@"
echo "[test] setup + build + tests took $(( $(date +%s) - start )) s"
