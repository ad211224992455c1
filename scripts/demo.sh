#!/usr/bin/env bash
# Set up .venv if needed, then run avrep end to end on the synthetic default corpus.
# Usage: scripts/demo.sh [OUT_DIR]   (default: ./out/demo; AVREP_DEMO_PRESET=tiny for a quick run)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/_venv.sh"
cd "$ROOT"
OUT="${1:-out/demo}"
PRESET="${AVREP_DEMO_PRESET:-small}"
WORKERS="${AVREP_WORKERS:-2}"
AVREP=".venv/bin/avrep"
mkdir -p "$OUT"
step() { echo; echo "== $*"; }

step "1/1 synth: generate the '$PRESET' synthetic audio-visual speech corpus"
$AVREP synth --preset "$PRESET" --out "$OUT/corpus" --seed 0 --workers "$WORKERS"
