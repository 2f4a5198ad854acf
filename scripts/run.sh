#!/usr/bin/env bash
# Install DA Daily's Python packages and start the app on SQLite (var/dadaily.sqlite3, or DATABASE_URL).
# Extra arguments go to `streamlit run`, e.g. scripts/run.sh --server.port 8600
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_venv requirements.txt
.venv/bin/python -m dv db upgrade
echo "DA Daily: open http://127.0.0.1:8501 (first run creates the first coordinator account)"
exec .venv/bin/python -m streamlit run app.py "$@"
