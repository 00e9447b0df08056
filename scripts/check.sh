#!/usr/bin/env bash
# The whole test suite: lint, strict typing, the layering contracts, then every test (unit, integration, fault).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check gateway ble video store cloud groundwork tests bench
.venv/bin/ruff format --check --quiet gateway ble video store cloud groundwork tests bench
.venv/bin/mypy
.venv/bin/lint-imports --no-cache
.venv/bin/python -m pytest "$@"
