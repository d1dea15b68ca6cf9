#!/usr/bin/env bash
# Install moa-depthclip and what it needs into the active Python environment.
#   bash scripts/install.sh          # the package
#   bash scripts/install.sh dev      # the package + test/lint/ONNX extras
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
extras="${1:-}"

# PyTorch first and pinned: an unpinned torch may pull a multi-GB CUDA build where a CPU build is
# wanted. An already-installed torch (e.g. a CUDA build on a GPU machine) is kept as it is.
if ! "$PYTHON" -c "import torch" >/dev/null 2>&1; then
  "$PYTHON" -m pip install --quiet "torch==${TORCH_VERSION:-2.13.0}"
fi
if [ -n "$extras" ]; then
  "$PYTHON" -m pip install --quiet -e ".[${extras}]"
else
  "$PYTHON" -m pip install --quiet -e .
fi
