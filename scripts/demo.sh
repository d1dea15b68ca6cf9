#!/usr/bin/env bash
# One command from a fresh checkout: install, then run the end-to-end demo on the embedded
# synthetic scenes (no download). Extra arguments go to `moa-depthclip demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec "${PYTHON:-python3}" -m moa_depthclip.cli.main demo "$@"
