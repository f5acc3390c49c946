#!/usr/bin/env bash
# GPU figures in one call: training chunks/s of the tutorial config (bf16, per_fold 256) with the
# real data pipeline (loader workers over a hard-linked VoxCeleb2-shaped protocol, augmentation
# on), the model step alone as the ratio's baseline, and extraction's real-time factor, exact vs
# plain per-window path (and shared); then every backbone (ResNet34, ECAPA_TDNN, CAMPPlus at the
# VoxCeleb2 recipe's sizes) beside SincTDNN in the same run: model step, whole loop, extraction.
# Goals on one H200: >= 10,000 training chunks/s and >= 20,000x real time extraction.
#
#   bench/gpu.sh              # on a GPU machine: bench/results/gpu_{train,extract,backbones}.json
#   bench/gpu.sh              # without a GPU: the same steps at tiny sizes on the CPU, to
#                             # bench/results/gpu_cpu_{train,extract,backbones}.json
#   FILES=200000 WORK=/scratch/x PYTHON=python bench/gpu.sh   # override sizes / places
#
# Python: $PYTHON, else .venv/bin/python, else python3 (a lent machine: no .venv). What that python
# lacks of the engine's needs comes from the wheels in bench/wheels/ (bench/gpu_wheels.sh), installed
# into a temporary folder put on PYTHONPATH, never into its site-packages. Every missing module is
# named up front, one line each, before any work.
set -euo pipefail
cd "$(dirname "$0")/.."
began=$(date +%s)
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON; elif [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
WORK=${WORK:-$(mktemp -d -t spkemb-gpu-XXXXXX)}
export SPKEMB_CACHE=$WORK/cache
export PYTHONUNBUFFERED=1
mkdir -p "$WORK" bench/results
stage() { echo "bench/gpu.sh: [$(( $(date +%s) - began )) s] $*"; }

# --- what the engine needs: present, or installed from bench/wheels/ ------------------------------
MODULES="torch torchaudio numpy scipy yaml pandas onnx onnxruntime pyannote.database pyannote.core soundfile sqlite_utils"
missing() {  # the modules of $MODULES that $PY cannot import, one a line
  # shellcheck disable=SC2086 # one argument per module
  "$PY" - $MODULES <<'PYEOF'
import importlib, sys
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception as e:  # an ImportError, or a library that fails to load (libsndfile, say)
        print(f"{name} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
PYEOF
}
MISSING=$(missing)
if [ -n "$MISSING" ] && compgen -G "bench/wheels/*.whl" >/dev/null; then
  SITE=$WORK/site
  # only the distributions this python lacks: the wheels never shadow what it has
  WHEELS=$("$PY" - bench/wheels/*.whl <<'PYEOF'
import importlib.metadata as md, re, sys
for path in sys.argv[1:]:
    name = re.sub(r"[-_.]+", "-", path.rsplit("/", 1)[-1].split("-")[0]).lower()
    try:
        md.version(name)
    except md.PackageNotFoundError:
        print(path)
PYEOF
)
  if [ -n "$WHEELS" ]; then
    stage "installing into $SITE: $(echo "$WHEELS" | xargs -n1 basename | tr '\n' ' ')"
    # shellcheck disable=SC2086 # one argument per wheel
    "$PY" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" $WHEELS
    export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
  fi
  MISSING=$(missing)
fi
if [ -n "$MISSING" ]; then
  while IFS= read -r line; do echo "bench/gpu.sh: error: $PY cannot import $line" >&2; done <<< "$MISSING"
  echo "bench/gpu.sh: error: fix: run bench/gpu_wheels.sh here and carry bench/wheels (a lent machine), or" \
       "install the project into the python that PYTHON names" >&2
  exit 2
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
stage "$("$PY" -c 'import sys, torch; print(f"python {sys.version.split()[0]}, torch {torch.__version__}")')"

if "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  DEVICE=cuda; PREFIX=gpu; SIZE=recipe
  FILES=${FILES:-100000}                       # 549 speakers: enough for per_fold 256
  PARALLEL=${PARALLEL:-$(( $(nproc) > 4 ? $(nproc) - 2 : 2 ))}
  SECONDS_EACH=${SECONDS_EACH:-10}; LOOP_BATCHES=${LOOP_BATCHES:-60}; EXTRACT_SECONDS=${EXTRACT_SECONDS:-1800}
  BATCH=${BATCH:-4096}; THREADS=${THREADS:-8}; PER_FOLD=${PER_FOLD:-256}; CLASSES=${CLASSES:-5994}
  # each backbone: 5 s of model steps, a 30-batch loop, 600 s of audio (about 3 minutes for all four)
  BB_SECONDS=${BB_SECONDS:-5}; BB_LOOP_BATCHES=${BB_LOOP_BATCHES:-30}; BB_EXTRACT_SECONDS=${BB_EXTRACT_SECONDS:-600}
  CONFIG=$WORK/tutorial.yml
  "$PY" -c 'from engine.config import template_text; print(template_text("tutorial"), end="")' > "$CONFIG"
else
  DEVICE=cpu; PREFIX=gpu_cpu; SIZE=template
  FILES=${FILES:-3000}                         # 16 speakers
  PARALLEL=${PARALLEL:-2}
  SECONDS_EACH=${SECONDS_EACH:-2}; LOOP_BATCHES=${LOOP_BATCHES:-3}; EXTRACT_SECONDS=${EXTRACT_SECONDS:-10}
  BATCH=${BATCH:-64}; THREADS=${THREADS:-2}; PER_FOLD=${PER_FOLD:-8}; CLASSES=${CLASSES:-16}
  BB_SECONDS=${BB_SECONDS:-1}; BB_LOOP_BATCHES=${BB_LOOP_BATCHES:-2}; BB_EXTRACT_SECONDS=${BB_EXTRACT_SECONDS:-6}
  CONFIG=$WORK/tiny.yml                        # the tutorial's shape, CPU-sized
  "$PY" -c 'from engine.config import template_text; print(template_text("tutorial"), end="")' \
    | sed -e 's/per_fold: 256/per_fold: 8/' -e 's/embedding_dim: 512/embedding_dim: 32/' > "$CONFIG"
fi
stage "device $DEVICE, $FILES files, --parallel $PARALLEL, work in $WORK"

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
stage "corpus and protocol ready"

# training: loader alone, model step alone (bf16 on cuda), the whole loop (spkemb-engine train)
"$PY" bench/train_throughput.py --database "$DATABASES" --protocol Scale.SpeakerVerification.VoxCeleb2 \
  --config "$CONFIG" --device "$DEVICE" --parallel "$PARALLEL" --loop-parallel "$PARALLEL" \
  --loop-batches "$LOOP_BATCHES" --seconds "$SECONDS_EACH" --augment --out "bench/results/${PREFIX}_train.json"
stage "training throughput done"

# extraction: plain per-window vs exact (vs shared), real-time factors
"$PY" bench/extract.py --device "$DEVICE" --data "$WORK/demo" --seconds "$EXTRACT_SECONDS" --repeat 2 \
  --batch "$BATCH" --threads "$THREADS" --output "bench/results/${PREFIX}_extract.json"
stage "extraction done"

# every backbone beside SincTDNN (the config above): model step, whole loop, exact extraction
"$PY" bench/backbones_throughput.py --device "$DEVICE" --size "$SIZE" --baseline "$CONFIG" \
  --per-fold "$PER_FOLD" --per-label 1 --duration 2.0 --speakers "$CLASSES" --seconds "$BB_SECONDS" \
  --database "$DATABASES" --protocol Scale.SpeakerVerification.VoxCeleb2 --parallel "$PARALLEL" \
  --loop-batches "$BB_LOOP_BATCHES" --data "$WORK/demo" --extract-seconds "$BB_EXTRACT_SECONDS" \
  --batch "$BATCH" --threads "$THREADS" --out "bench/results/${PREFIX}_backbones.json"
stage "backbones done"

"$PY" - "$PREFIX" <<'PYEOF'
import json, sys
prefix = sys.argv[1]
train = json.load(open(f"bench/results/{prefix}_train.json"))
extract = json.load(open(f"bench/results/{prefix}_extract.json"))
m = train["model"]
print(f"training: loop {m['loop_chunks_per_s']:,.0f} chunks/s, model step alone {m['model_chunks_per_s']:,.0f} "
      f"chunks/s ({m['loop_chunks_per_s'] / m['model_chunks_per_s']:.2f} of it); loader alone "
      f"{max(train['data_chunks_per_s'].values()):,.0f} chunks/s (goal on one H200: >= 10,000 chunks/s)")
if "model_chunks_per_s_unfolded_norm" in m:
    print(f"model step with the waveform norm unfolded (the baseline): {m['model_chunks_per_s_unfolded_norm']:,.0f} "
          f"chunks/s; folded / unfolded {m['model_chunks_per_s'] / m['model_chunks_per_s_unfolded_norm']:.2f}x")
rtf = extract["real_time_factor"]
print(f"extraction: exact {rtf['exact']:,.0f}x real time, plain {rtf['plain']:,.0f}x, shared {rtf['shared']:,.0f}x "
      f"(goal on one H200: >= 20,000x)")
print(json.load(open(f"bench/results/{prefix}_backbones.json"))["table"])
PYEOF
stage "all figures in bench/results/${PREFIX}_{train,extract,backbones}.json"
