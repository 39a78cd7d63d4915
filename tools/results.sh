#!/bin/bash
# The numbers at scale (docs/results/): every table of docs/results/README.md from one command.
#
#   tools/results.sh runs [STAGE...]  # compute the runs (hours on 2 CPU cores; resumable: rerun to continue)
#   tools/results.sh tables           # write docs/results/*.md|json|png from the runs (minutes)
#   tools/results.sh                  # both
#
# Stages of `runs`, cheapest and most needed first (all of them by default):
#   baselines  WHOLE-IMAGE CENTER SELSEARCH BING on K     stl        STL-WL + STL-CL (one pass) on K
#   nosdrop    STL-WL without s_drop on K_ABL               cnn        SLIDING-WINDOW OCCLUSION-BOX on K_CNN
#   squeezenet STL-WL with the Caffe SqueezeNet on K_SQ
#   (a run computes its images in the dataset's order, so an unfinished one holds first-half images first)
#
# Environment (defaults in brackets):
#   N22      folder of the runs and image lists, outside the checkout [~/stl-runs/n22]
#   ROOT     the ILSVRC val root [../shared/data/ilsvrc2012-val-227]
#   K        images: the first K/2 of each half of the 650 (image_ids.txt order, split at 325) [256]
#   K_ABL    images of the s_drop ablation [64]
#   K_SQ     images of the SqueezeNet curve (STL-WL, Caffe engine: ~65 s per image here) [K_ABL]
#   K_CNN    images of the CNN baselines SLIDING-WINDOW / OCCLUSION-BOX [K]; below K they get their own table
#   K_RISE   images of RISE (N = 500 masks; 500 forwards an image) in the WSOL table [128]
#   WORKERS  Ray workers of every run, one classifier thread each [2]
#   THREADS  classifier threads of the one-process runs: stage stl and `tables` (stl wsol) [2]
#   STL      the stl command [.venv/bin/stl]
#   OUT      where the tables go [docs/results]
#
# STL+ weights are selected on the first-half images only (`stl wsol --freeze-plus`) and reported
# on the second half; nothing here is chosen by looking at the second half.
set -euo pipefail
cd "$(dirname "$0")/.."
N22=${N22:-$HOME/stl-runs/n22}
ROOT=${ROOT:-../shared/data/ilsvrc2012-val-227}
K=${K:-256}
K_ABL=${K_ABL:-64}
K_CNN=${K_CNN:-$K}
K_SQ=${K_SQ:-$K_ABL}
K_RISE=${K_RISE:-128}
WORKERS=${WORKERS:-2}
THREADS=${THREADS:-2}
STL=${STL:-.venv/bin/stl}
OUT=${OUT:-docs/results}
PY=${PY:-.venv/bin/python}
RUNS=$N22/runs
R=$RUNS/ilsvrc2012_val
mkdir -p "$N22" "$OUT"

ids() {  # ids K: the first K/2 images of each half, interleaved (so any prefix holds both halves)
  "$PY" - "$ROOT" "$1" "$N22/ids$1.txt" <<'EOF'
import sys
from stl.data import get_dataset
ids = [r.image_id for r in get_dataset("ilsvrc2012_val", root=sys.argv[1])]
h, half = int(sys.argv[2]) // 2, len(ids) // 2
a, b = ids[:half][:h], ids[half:][:h]
open(sys.argv[3], "w").write("".join(f"{x}\n{y}\n" for x, y in zip(a, b)))
EOF
  echo "$N22/ids$1.txt"
}

# a method's run on Ray workers with one thread each (docs/scale.md: on 2 cores, 2 workers x 1 thread
# beat 1 process x 2 threads); resumable: a rerun computes only the images its store lacks
run() { nice -n 10 "$STL" run --dataset ilsvrc2012_val --root "$ROOT" --executor ray --workers "$WORKERS" \
          --threads-per-worker 1 "$@"; }
# several methods sharing forwards in ONE pass of one process (stl.runner.run_methods; Ray workers
# run the methods one after the other): STL-CL after STL-WL costs 1.11x the forwards, not 2x
run_one_pass() { nice -n 10 "$STL" run --dataset ilsvrc2012_val --root "$ROOT" --threads "$THREADS" "$@"; }

stage() {
  case "$1" in
    baselines) run --method WHOLE-IMAGE CENTER SELSEARCH BING --images "@$(ids "$K")" --out "$RUNS" ;;
    stl) run_one_pass --method STL-WL STL-CL --engine onnx --images "@$(ids "$K")" --out "$RUNS" --chunk 4 ;;
    nosdrop) run --method STL-WL --engine onnx --images "@$(ids "$K_ABL")" --out "$N22/runs-nosdrop" --chunk 4 \
                 --set similarity_weights=0,1/3,1/3,1/3 ;;
    cnn) run --method SLIDING-WINDOW OCCLUSION-BOX --engine onnx --images "@$(ids "$K_CNN")" --out "$RUNS" --chunk 4 ;;
    squeezenet) run --method STL-WL --model squeezenet --engine torch --images "@$(ids "$K_SQ")" --out "$RUNS" \
                    --chunk 2 ;;
    *) echo "unknown stage: $1 (baselines stl nosdrop cnn squeezenet)" >&2; exit 2 ;;
  esac
}

runs() {
  local s
  for s in ${*:-baselines stl nosdrop cnn squeezenet}; do stage "$s"; done
}

covers() {  # covers RUN IDS_FILE: the run holds every image of the list
  [ -f "$1" ] && "$PY" - "$1" "$2" <<'EOF'
import sys
from stl.runner import stored_ids
want = {l.strip() for l in open(sys.argv[2]) if l.strip()}
sys.exit(0 if want <= stored_ids(sys.argv[1]) else 1)
EOF
}

ev() { "$STL" eval --n 1 2 5 10 100 --ci 0.95 "$@"; }

tables() {
  local ids_k ids_abl ids_cnn lite=efficientnet_lite0_onnx cnn=()
  ids_k=$(ids "$K"); ids_abl=$(ids "$K_ABL"); ids_cnn=$(ids "$K_CNN")
  for m in SLIDING-WINDOW OCCLUSION-BOX; do cnn+=("$R/${m}__$lite.h5"); done
  local main=("$R/STL-CL__$lite.h5" "$R/STL-WL__$lite.h5" "$R/WHOLE-IMAGE.h5" "$R/CENTER.h5" "$R/SELSEARCH.h5"
              "$R/BING.h5")
  # Fig. 3 protocol: every method on the same images, beside the paper (the CNN baselines too where
  # their runs hold all K images; else they get their own table on the first K_CNN)
  if covers "${cnn[0]}" "$ids_k" && covers "${cnn[1]}" "$ids_k"; then main+=("${cnn[@]}"); fi
  ev "${main[@]}" --images "@$ids_k" --md "$OUT/fig3_lite0.md" --json "$OUT/fig3_lite0.json" --plot "$OUT/fig3_lite0.png"
  if [ "$K_CNN" != "$K" ] && covers "${cnn[0]}" "$ids_cnn" && covers "${cnn[1]}" "$ids_cnn"; then
    ev "$R/STL-CL__$lite.h5" "$R/STL-WL__$lite.h5" "${cnn[@]}" "$R/CENTER.h5" --images "@$ids_cnn" \
       --md "$OUT/fig3_cnn_baselines.md" --json "$OUT/fig3_cnn_baselines.json"
  fi
  # the same on the second half only (where STL+ is reported: wsol.md, "Paper's protocol")
  awk 'NR % 2 == 0' "$ids_k" > "$N22/half2_$K.txt"
  ev "$R/STL-CL__$lite.h5" "$R/STL-WL__$lite.h5" "$R/WHOLE-IMAGE.h5" "$R/CENTER.h5" "$R/SELSEARCH.h5" "$R/BING.h5" \
     --images "@$N22/half2_$K.txt" --md "$OUT/fig3_lite0_half2.md" --json "$OUT/fig3_lite0_half2.json"
  # the paper's claims, paired on the same images
  ev "$R/STL-WL__$lite.h5" "$R/STL-CL__$lite.h5" --paired --images "@$ids_k" --md "$OUT/paired_wl_vs_cl.md" \
     --json "$OUT/paired_wl_vs_cl.json"
  for b in SELSEARCH BING CENTER; do
    ev "$R/STL-WL__$lite.h5" "$R/$b.h5" --paired --images "@$ids_k" --md "$OUT/paired_wl_vs_${b,,}.md" \
       --json "$OUT/paired_wl_vs_${b,,}.json"
  done
  # the s_drop ablation: STL-WL minus STL-WL without s_drop (weights 0, 1/3, 1/3, 1/3)
  ev "$R/STL-WL__$lite.h5" "$N22/runs-nosdrop/ilsvrc2012_val/STL-WL__$lite.h5" --paired --images "@$ids_abl" \
     --md "$OUT/ablation_sdrop.md" --json "$OUT/ablation_sdrop.json"
  # Fig. 3 with the real Caffe SqueezeNet beside Lite0
  local ids_sq
  ids_sq=$(ids "$K_SQ")
  if covers "$R/STL-WL__squeezenet.h5" "$ids_sq"; then
    ev "$R/STL-WL__squeezenet.h5" "$R/STL-WL__$lite.h5" --images "@$ids_sq" --md "$OUT/fig3_squeezenet.md" \
       --json "$OUT/fig3_squeezenet.json" --plot "$OUT/fig3_squeezenet.png"
  fi
  # WSOL: STL, STL-HEAT, STL+ (weights selected on the first half and frozen in the package) beside
  # CAM, Grad-CAM, RISE (N = 500) on the same backbone and images
  nice -n 10 "$STL" wsol --engine onnx --threads "$THREADS" --root "$ROOT" --runs "$RUNS" --no-stl-compute \
       --images "@$ids_k" --rise-masks 500 --rise-limit "$K_RISE" --ci 0.95 --freeze-plus --no-progress \
       --out "$N22/wsol"
  for ext in md json; do cp "$N22/wsol/wsol__$lite.$ext" "$OUT/wsol.$ext"; done
  cp "$N22/wsol/figure__$lite.png" "$OUT/wsol_figure.png" 2>/dev/null || true
  "$PY" tools/results_claims.py "$OUT" > /dev/null  # the paper's claims: holds / does not hold
  echo "tables written to $OUT/"
}

case "${1:-all}" in
  runs) shift; runs "$@" ;;
  tables) tables ;;
  all) runs; tables ;;
  *) echo "usage: tools/results.sh [runs|tables|all]" >&2; exit 2 ;;
esac
