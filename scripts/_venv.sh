#!/usr/bin/env bash
# Shared by demo.sh and test.sh: create .venv if missing and install avrep with the extras the demo and the test
# suite use: cpu (faiss-cpu; [gpu] is the other choice, never both), serve, report, compare (decord), dev, distributed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${AVREP_PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY="$cand"; break
    fi
  done
fi
[ -n "$PY" ] || { echo "avrep needs Python 3.11 (set AVREP_PYTHON)" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $PY"
  "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
# Re-install only when setup.cfg changed since the last install (a stamp keeps reruns fast).
STAMP=.venv/.avrep-installed
EXTRAS=cpu,serve,report,compare,dev,distributed
if [ ! -f "$STAMP" ] || [ setup.cfg -nt "$STAMP" ] || ! .venv/bin/python -c 'import avrep, torch, faiss, av, dlib, decord, matplotlib, fastapi, skimage' 2>/dev/null; then
  echo "[setup] installing avrep[$EXTRAS] into .venv (first time: a few minutes, about 7 GB)"
  # torch's CUDA build alone is 5.5 GB: say so up front instead of failing midway with ENOSPC.
  free_kb=$(df -Pk . | awk 'NR==2 {print $4}')
  if [ -n "$free_kb" ] && [ "$free_kb" -lt 8000000 ]; then
    echo "[setup] warning: only $((free_kb / 1024)) MB free here; the install needs about 7 GB" >&2
  fi
  .venv/bin/pip install -q --no-cache-dir -e ".[$EXTRAS]"
  touch "$STAMP"
fi
