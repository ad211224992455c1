#!/usr/bin/env bash
# Set up .venv if needed, then run avrep end to end on the synthetic default corpus:
# synth -> prepare -> preprocess -> train -> eval -> embed -> index build -> search -> lipread -> sync
# -> train-generator -> generate -> report. Each step prints one line of what it did and its key number.
#
# Usage: scripts/demo.sh [OUT_DIR]            (default: ./out/demo)
#   AVREP_DEMO_PRESET    synth preset (default small: 50 words)
#   AVREP_DEMO_CLIPS     clips per word (default 40, so the whole demo fits ~20 min on 2 cores;
#                        the full small preset has 100)
#   AVREP_DEMO_EPOCHS    DAVS training epochs (default 16)
#   AVREP_WORKERS        parallel processes (default 2)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/_venv.sh"
cd "$ROOT"
OUT="${1:-out/demo}"
PRESET="${AVREP_DEMO_PRESET:-small}"
CLIPS="${AVREP_DEMO_CLIPS:-40}"
EPOCHS="${AVREP_DEMO_EPOCHS:-16}"
WORKERS="${AVREP_WORKERS:-2}"
PY=".venv/bin/python"
AVREP=".venv/bin/avrep"
mkdir -p "$OUT"
T0=$(date +%s)
step() { echo; echo "== [$(( $(date +%s) - T0 ))s] $*"; }

step "synth: '$PRESET' synthetic audio-visual speech corpus ($CLIPS clips/word)"
$AVREP synth --preset "$PRESET" --clips-per-word "$CLIPS" --out "$OUT/corpus" --seed 0 --workers "$WORKERS" 2>&1 | grep -v "^  " | grep -v "it/s\]" || true
test -f "$OUT/corpus/manifest.parquet"

step "prepare + preprocess: mouth ROIs, face crops and audio into a feature store"
$AVREP prepare synth "$OUT/corpus" -o "$OUT/manifest.parquet"
$AVREP preprocess "$OUT/manifest.parquet" -o "$OUT/store" -j "$WORKERS" --landmarks true 2>&1 | tail -n 3

step "train: DAVS 'small' config, $EPOCHS epochs"
$AVREP train --config small --data "$OUT/store" --out "$OUT/run" --epochs "$EPOCHS" --batch-size 32 --workers 1 --quiet --resume 2>&1 | tail -n 3

step "eval: lip reading, retrieval and disentanglement on unseen identities and voices"
$AVREP eval "$OUT/run" --data "$OUT/store" --split test --workers 1 2>&1 | tail -n 8

step "embed: video and audio sync embeddings of the test split (clip-level retrieval)"
$AVREP embed "$OUT/store" -c "$OUT/run" --modality video --kind sync --split test -o "$OUT/emb_video"
$AVREP embed "$OUT/store" -c "$OUT/run" --modality audio --kind sync --split test -o "$OUT/emb_audio"

step "index build: FAISS indexes over the video and audio embeddings (each tuned on the other's: the queries users send)"
$AVREP index build "$OUT/emb_video" --out "$OUT/index_video" --tune-queries "$OUT/emb_audio" --overwrite 2>&1 | tail -n 2
$AVREP index build "$OUT/emb_audio" --out "$OUT/index_audio" --tune-queries "$OUT/emb_video" --overwrite 2>&1 | tail -n 2

step "search: an audio query should find its own video first"
QUERY=$($PY - "$OUT" <<'PY'
import sys, pandas as pd
out = sys.argv[1]
m = pd.read_parquet(f"{out}/corpus/manifest.parquet")
print(f"{out}/corpus/" + m[m.split == "test"].iloc[0].path)
PY
)
$AVREP search "$OUT/index_video" --audio "$QUERY" -k 5
$PY - "$OUT" "$QUERY" <<'PY'
import json, subprocess, sys
from pathlib import Path
out, q = sys.argv[1], sys.argv[2]
r = subprocess.run([".venv/bin/avrep", "search", f"{out}/index_video", "--audio", q, "-k", "5", "--json"],
                   capture_output=True, text=True, check=True)
hits = json.loads(r.stdout)["results"][0]
name = Path(q).stem
rank = next((i + 1 for i, h in enumerate(hits) if h.get("clip_id") == name), None)
print(f"search: audio query {name} -> its own video at rank {rank if rank else '>5'} (top hit {hits[0]['clip_id']}, score {hits[0]['score']:.3f})")
PY

if $AVREP lipread --help >/dev/null 2>&1; then
  step "lipread: video-only word reading of the query clip"
  $AVREP lipread "$QUERY" --checkpoint "$OUT/run" -k 3
  step "sync: audio-video offset of the query clip (0 expected)"
  $AVREP sync "$QUERY" --checkpoint "$OUT/run"
fi

step "train-generator + generate: talking face from one photo and speech"
$AVREP train-generator --config tiny --data "$OUT/store" --davs "$OUT/run" --out "$OUT/gen" --epochs 2 --workers 1 --quiet --resume 2>&1 | tail -n 2
FACE="$ROOT/../shared/data/faces/face1.jpg"
if [ ! -f "$FACE" ]; then
  FACE="$OUT/face.png"
  $PY - "$OUT/corpus" "$FACE" <<'PY'
import sys, av, cv2, pandas as pd
c, out = sys.argv[1], sys.argv[2]
m = pd.read_parquet(f"{c}/manifest.parquet")
with av.open(f"{c}/{m[m.split=='test'].iloc[0].path}") as v:
    f = next(v.decode(video=0)).to_ndarray(format="rgb24")
cv2.imwrite(out, cv2.cvtColor(cv2.resize(f, (256, 256)), cv2.COLOR_RGB2BGR))
PY
fi
$AVREP generate --face "$FACE" --audio "$QUERY" -o "$OUT/generated.mp4" --checkpoint "$OUT/gen" --quiet
echo "generate: wrote $OUT/generated.mp4"

if $AVREP report --help >/dev/null 2>&1; then
  step "report: HTML page of metrics, curves, confusion matrix, t-SNE and retrieval examples"
  $AVREP report "$OUT/run" --out "$OUT/report.html"
fi
step "done in $(( $(date +%s) - T0 ))s; outputs in $OUT"
echo
echo "search page + JSON API over these indexes (then open http://127.0.0.1:8000/):"
echo "  $AVREP serve $OUT/index_video $OUT/index_audio"
