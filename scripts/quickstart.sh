#!/usr/bin/env bash
# Sets up if needed (building only the CLI), then trains scenarios/quickstart.toml and checks it against its golden.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "${CLIPREPRO_ROOT}"
bash scripts/setup.sh cliprepro >&2
exec build/cliprepro run scenarios/quickstart.toml --out runs "$@"
