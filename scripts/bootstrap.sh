#!/usr/bin/env bash
# Create ./.venv (Python 3.11+) and install radio-engine with the extras given as arguments.
# Re-running is cheap: pip's cache (~/.cache/pip) serves the wheels, Maven's ~/.m2 the jars.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-train,dev}"
PYTHON="${PYTHON:-python3}"
"$PYTHON" - <<'PY' || { echo "radio-engine needs Python 3.11 or newer" >&2; exit 2; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)-${extras//,/-}"
if [ ! -f "$stamp" ]; then
  echo "==> installing radio-engine[$extras] into .venv (first run: PyTorch is large, please wait)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet --progress-bar off -e ".[$extras]"
  touch "$stamp"
fi
