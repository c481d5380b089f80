#!/usr/bin/env bash
# README command two: install, lint, then every test (unit + integration on a real Kafka broker).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh train,dev
# Debian packages the checks need: prometheus (promtool and a real Prometheus for the deploy
# checks) and chromium (the live page's headless-browser test; Playwright drives it and never
# downloads a browser of its own). Installed once, only when missing.
missing=()
{ command -v promtool && command -v prometheus; } >/dev/null || missing+=(prometheus)
command -v chromium >/dev/null || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "==> installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
.venv/bin/ruff check radio_engine tests benchmarks
.venv/bin/ruff format --check radio_engine tests benchmarks
exec .venv/bin/python -m pytest tests "$@"
