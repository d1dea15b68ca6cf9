#!/usr/bin/env bash
# One command from a fresh checkout: install with the test extras, then run the test suite
# (offline, CPU only). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh dev
exec "${PYTHON:-python3}" -m pytest "$@"
