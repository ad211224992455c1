#!/usr/bin/env bash
# Create a separate venv holding autofaiss 2.18 for benchmarks/index.py (option (c)).
# autofaiss is NEVER an avrep dependency: it pins old numpy/pyarrow, so it lives in its own venv and
# the benchmark calls it in a subprocess.  Usage: scripts/autofaiss_venv.sh [VENV_DIR]
set -euo pipefail
VENV="${1:-/work/.venv-autofaiss}"
PY="${AUTOFAISS_PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import autofaiss, faiss' 2>/dev/null; then
  echo "[autofaiss] $VENV already has autofaiss"; exit 0
fi
echo "[autofaiss] creating $VENV with $PY"
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
# numpy<2 / pyarrow<16: autofaiss 2.18 (and embedding-reader) break on newer ones.
"$VENV/bin/pip" install -q "autofaiss==2.18.0" "numpy<2" "pyarrow<16"
"$VENV/bin/python" -c 'import autofaiss, faiss, numpy; print("[autofaiss] ok: faiss", faiss.__version__, "numpy", numpy.__version__)'
