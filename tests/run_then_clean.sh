#!/usr/bin/env bash
# Runs a test command and removes its scratch directory when it passed, so a full CI run does not
# fill the disk (the studies and the seed study write GBs of logs); a failure keeps it to inspect,
# as does CLIPREPRO_KEEP_TEST_TMP=1.
#
#   tests/run_then_clean.sh SCRATCH_DIR COMMAND [ARGS...]
set -uo pipefail
scratch=$1
shift
"$@"
rc=$?
if [ "${rc}" -eq 0 ] && [ -z "${CLIPREPRO_KEEP_TEST_TMP:-}" ]; then rm -rf "${scratch}"; fi
exit "${rc}"
