#!/usr/bin/env bash
# README command two: install, lint, then every test (unit + integration on a real Kafka broker).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh train,dev
.venv/bin/ruff check radio_engine tests benchmarks
.venv/bin/ruff format --check radio_engine tests benchmarks
exec .venv/bin/python -m pytest tests "$@"
