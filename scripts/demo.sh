#!/usr/bin/env bash
# README command one: install, then run the demo (broker, worker, real audio, replayed sessions).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh train,dev
exec .venv/bin/radio-engine demo "$@"
