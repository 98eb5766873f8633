#!/usr/bin/env bash
# DuckDB running the equivalent reconciliation SQL (reconcile.sql) on the files
# `handoff reconcile generate` wrote. Creates its own venv on first use.
# Usage: bench/reconcile/duckdb.sh DIR AS_OF TIMEZONE DEADLINE_HOURS [--profile]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${DUCKDB_VENV:-$here/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet duckdb
fi
exec /usr/bin/time -v "$venv/bin/python" "$here/duckdb_reconcile.py" "$@"
