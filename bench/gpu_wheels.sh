#!/usr/bin/env bash
# The wheels bench/gpu.sh needs on a lent GPU machine that its python3 lacks, into bench/wheels/
# (git-ignored; carried with `carry: ["bench/wheels"]`). That machine is offline, and its python3
# is CPython 3.12 on x86_64 Linux with torch 2.11 and numpy, pandas, scipy, pyyaml, rich, onnx,
# onnxruntime, matplotlib: the engine paths of bench/gpu.sh need pyannote.database, pyannote.core,
# soundfile (its manylinux wheel bundles libsndfile) and sqlite-utils beside them. This script
# resolves those four for cp312 manylinux x86_64 (metadata only), leaves out every distribution
# that the machine's own packages already bring (resolved the same way), downloads exactly the
# rest, one version each, and checks that the folder stays well under the 64 MiB a call carries.
#
#   bench/gpu_wheels.sh                  # -> bench/wheels/*.whl and bench/wheels/needed.txt
#   PIP_PYTHON=python3.12 bench/gpu_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PIP_PYTHON=${PIP_PYTHON:-python3}
DEST=bench/wheels
NEEDED="pyannote.database pyannote.core soundfile sqlite-utils"
# what the lent machine's python3 has (see the device notes): never carried, never shadowed
# (torch stands for itself by typing-extensions, the one of its needs that the four share)
PRESENT="typing-extensions numpy pandas scipy pyyaml rich onnx onnxruntime matplotlib"
LIMIT_MIB=16                           # well under the 64 MiB a call carries with the tree
TARGET=(--only-binary=:all: --python-version 3.12 --implementation cp --abi cp312
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_12_x86_64
        --platform manylinux2010_x86_64 --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64)
TMP=$(mktemp -d -t spkemb-wheels-XXXXXX)
trap 'rm -rf "$TMP"' EXIT

resolve() {  # resolve() REPORT REQUIREMENT...: name==version of every distribution the requirements bring
  local report=$1; shift
  "$PIP_PYTHON" -m pip install --quiet --dry-run --ignore-installed --target "$TMP/none" "${TARGET[@]}" \
    --report "$report" "$@" 2>"$TMP/pip.err" || { cat "$TMP/pip.err" >&2; exit 1; }
  "$PIP_PYTHON" -c 'import json, re, sys
for item in json.load(open(sys.argv[1]))["install"]:
    m = item["metadata"]
    print(re.sub(r"[-_.]+", "-", m["name"]).lower() + "==" + m["version"])' "$report"
}

# shellcheck disable=SC2086 # word splitting of the lists is meant
resolve "$TMP/present.json" $PRESENT | cut -d= -f1 | sort -u > "$TMP/present.txt"
# shellcheck disable=SC2086
resolve "$TMP/needed.json" $NEEDED $PRESENT | sort -u > "$TMP/all.txt"
# the needed closure less every name the machine's packages bring
awk -F'==' 'NR == FNR { present[$1] = 1; next } !($1 in present)' "$TMP/present.txt" "$TMP/all.txt" > "$TMP/needed.txt"

rm -rf "$DEST"; mkdir -p "$DEST"
xargs "$PIP_PYTHON" -m pip download --quiet --no-deps "${TARGET[@]}" -d "$DEST" < "$TMP/needed.txt"
cp "$TMP/needed.txt" "$DEST/needed.txt"
count=$(find "$DEST" -name '*.whl' | wc -l)
if [ "$count" -ne "$(wc -l < "$TMP/needed.txt")" ]; then
  echo "bench/gpu_wheels.sh: $count wheels for $(wc -l < "$TMP/needed.txt") distributions: see $DEST" >&2; exit 1
fi
kib=$(du -sk "$DEST" | cut -f1)
echo "bench/gpu_wheels.sh: $count wheels, $((kib / 1024)).$(( (kib % 1024) * 10 / 1024 )) MiB in $DEST: $(tr '\n' ' ' < "$TMP/needed.txt")"
if [ "$kib" -gt $((LIMIT_MIB * 1024)) ]; then
  echo "bench/gpu_wheels.sh: over $LIMIT_MIB MiB: the tree and the wheels must stay under 64 MiB a call" >&2; exit 1
fi
