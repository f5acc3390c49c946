#!/usr/bin/env bash
# GPU figures in one call: training chunks/s of the tutorial config (bf16, per_fold 256) with the
# real data pipeline (loader workers over a hard-linked VoxCeleb2-shaped protocol, augmentation
# on), the model step alone as the ratio's baseline, and extraction's real-time factor, exact vs
# plain per-window path (and shared). Goals on one H200: >= 10,000 training chunks/s and
# >= 20,000x real time extraction.
#
#   bench/gpu.sh              # on a GPU machine: bench/results/gpu_train.json, gpu_extract.json
#   bench/gpu.sh              # without a GPU: the same steps at tiny sizes on the CPU, to
#                             # bench/results/gpu_cpu_train.json, gpu_cpu_extract.json
#   FILES=200000 WORK=/scratch/x PYTHON=python bench/gpu.sh   # override sizes / places
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
WORK=${WORK:-$(mktemp -d -t spkemb-gpu-XXXXXX)}
export SPKEMB_CACHE=$WORK/cache
mkdir -p "$WORK" bench/results

if "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  DEVICE=cuda; OUT=gpu
  FILES=${FILES:-100000}                       # 549 speakers: enough for per_fold 256
  PARALLEL=${PARALLEL:-$(( $(nproc) > 4 ? $(nproc) - 2 : 2 ))}
  SECONDS_EACH=${SECONDS_EACH:-10}; LOOP_BATCHES=${LOOP_BATCHES:-60}; EXTRACT_SECONDS=${EXTRACT_SECONDS:-1800}
  BATCH=${BATCH:-4096}; THREADS=${THREADS:-8}
  CONFIG=$WORK/tutorial.yml
  "$PY" -c 'from engine.config import template_text; print(template_text("tutorial"), end="")' > "$CONFIG"
else
  DEVICE=cpu; OUT=gpu_cpu
  FILES=${FILES:-3000}                         # 16 speakers
  PARALLEL=${PARALLEL:-2}
  SECONDS_EACH=${SECONDS_EACH:-2}; LOOP_BATCHES=${LOOP_BATCHES:-3}; EXTRACT_SECONDS=${EXTRACT_SECONDS:-10}
  BATCH=${BATCH:-64}; THREADS=${THREADS:-2}
  CONFIG=$WORK/tiny.yml                        # the tutorial's shape, CPU-sized
  "$PY" -c 'from engine.config import template_text; print(template_text("tutorial"), end="")' \
    | sed -e 's/per_fold: 256/per_fold: 8/' -e 's/embedding_dim: 512/embedding_dim: 32/' > "$CONFIG"
fi
echo "bench/gpu.sh: device $DEVICE, $FILES files, --parallel $PARALLEL, work in $WORK"

# the demo corpus (noise for the augmentation, meetings for extraction) and the hard-linked protocol
[ -f "$WORK/demo/database.yml" ] || "$PY" -m engine demo-data "$WORK/demo" --speakers 60 >/dev/null
"$PY" - "$WORK" "$FILES" <<'PYEOF'
import sys
from pathlib import Path
from engine.demo.scaled import make_scaled_protocol
work, files = Path(sys.argv[1]), int(sys.argv[2])
if not (work / "vox2" / "database.yml").is_file():
    make_scaled_protocol(work / "vox2", sorted((work / "demo" / "voxceleb" / "wav").rglob("*.wav")), files)
PYEOF
DATABASES="$WORK/vox2/database.yml;$WORK/demo/database.yml"

# training: loader alone, model step alone (bf16 on cuda), the whole loop (spkemb-engine train)
"$PY" bench/train_throughput.py --database "$DATABASES" --protocol Scale.SpeakerVerification.VoxCeleb2 \
  --config "$CONFIG" --device "$DEVICE" --parallel "$PARALLEL" --loop-parallel "$PARALLEL" \
  --loop-batches "$LOOP_BATCHES" --seconds "$SECONDS_EACH" --augment --out "bench/results/${OUT}_train.json"

# extraction: plain per-window vs exact (vs shared), real-time factors
"$PY" bench/extract.py --device "$DEVICE" --data "$WORK/demo" --seconds "$EXTRACT_SECONDS" --repeat 2 \
  --batch "$BATCH" --threads "$THREADS" --output "bench/results/${OUT}_extract.json"

"$PY" - "$OUT" <<'PYEOF'
import json, sys
out = sys.argv[1]
train = json.load(open(f"bench/results/{out}_train.json"))
extract = json.load(open(f"bench/results/{out}_extract.json"))
m = train["model"]
print(f"training: loop {m['loop_chunks_per_s']:,.0f} chunks/s, model step alone {m['model_chunks_per_s']:,.0f} "
      f"chunks/s ({m['loop_chunks_per_s'] / m['model_chunks_per_s']:.2f} of it); loader alone "
      f"{max(train['data_chunks_per_s'].values()):,.0f} chunks/s (goal on one H200: >= 10,000 chunks/s)")
rtf = extract["real_time_factor"]
print(f"extraction: exact {rtf['exact']:,.0f}x real time, plain {rtf['plain']:,.0f}x, shared {rtf['shared']:,.0f}x "
      f"(goal on one H200: >= 20,000x)")
PYEOF
