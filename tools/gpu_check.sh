#!/usr/bin/env bash
# The prepared GPU check (docs/gpu.md):  bash tools/gpu_check.sh [OUT]   or   make gpu-check [GPU_CHECK_OUT=..]
#
# 1. environment: GPU (nvidia-smi), torch; on a GPU machine a CPU build of the pinned torch
#    (requirements.txt) is replaced by the CUDA wheel of the same version;
# 2. the tests marked `cuda` (tests/test_cuda.py; STL_REQUIRE_CUDA=1 and STL_REQUIRE_ALL=1 on a GPU machine,
#    so a skip -- no usable GPU, no ../shared -- fails);
# 3. `stl bench --device cuda` for each model and precision, the CPU side (segmentation,
#    clustering) reported apart;
# 4. `stl run --device cuda --executor ray --workers 2 --gpus-per-worker 0.5` on 32 images, its windows
#    compared with a CPU run of the same images;
# 5. OUT/README.md: what ran, what was skipped, the tables, the issue's goals.
#
# On a machine without a GPU the same steps run with the CUDA parts skipped (and say so): the cuda
# tests skip, the bench and the runs shrink to a 1-image, 1-segmentation plumbing check on the CPU
# (STL on many images would take hours there). Every step runs even if an earlier one failed; the
# exit status is 1 if any did.
#
# Settings (environment): PYTHON (default .venv/bin/python; made with `make setup` if missing),
# STL_SHARED (default ./shared, else ../shared), GPU_CHECK_QUICK=1 (16 bench images in chunks of 16, 1 reference
# image, 8 run images: meant for a 15-minute GPU lease), GPU_CHECK_BENCH_IMAGES (64), GPU_CHECK_BENCH_CHUNK (32), GPU_CHECK_REFERENCE_IMAGES (2),
# GPU_CHECK_MODELS ("caffenet_random squeezenet efficientnet_lite0"), GPU_CHECK_PRECISIONS ("fp32 fp16"),
# GPU_CHECK_RUN_MODEL (caffenet_random), GPU_CHECK_RUN_IMAGES (32), GPU_CHECK_RAY_WORKERS (2),
# GPU_CHECK_GPUS_PER_WORKER (0.5), GPU_CHECK_CPU_WORKERS (CPU run's Ray workers; default cores - 1),
# TORCH_CUDA (wheel tag, e.g. cu128, for download.pytorch.org when PyPI's wheel does not fit), GPU_CHECK_FORCE_CPU=1.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
OUT="${1:-results/gpu-check}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
PY="${PYTHON:-.venv/bin/python}"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export GLOG_minloglevel=2
if [ -z "${STL_SHARED:-}" ]; then
  if [ -f shared/README.md ]; then export STL_SHARED="$REPO/shared"; else export STL_SHARED="$(cd .. && pwd)/shared"; fi
fi
ROOT="$STL_SHARED/data/ilsvrc2012-val-227"

QUICK="${GPU_CHECK_QUICK:-0}"
BENCH_IMAGES="${GPU_CHECK_BENCH_IMAGES:-$([ "$QUICK" = 1 ] && echo 16 || echo 64)}"
BENCH_CHUNK="${GPU_CHECK_BENCH_CHUNK:-$([ "$QUICK" = 1 ] && echo 16 || echo 32)}"
REFERENCE_IMAGES="${GPU_CHECK_REFERENCE_IMAGES:-$([ "$QUICK" = 1 ] && echo 1 || echo 2)}"
MODELS="${GPU_CHECK_MODELS:-caffenet_random squeezenet efficientnet_lite0}"
PRECISIONS="${GPU_CHECK_PRECISIONS:-fp32 fp16}"
RUN_MODEL="${GPU_CHECK_RUN_MODEL:-caffenet_random}"
RUN_IMAGES="${GPU_CHECK_RUN_IMAGES:-$([ "$QUICK" = 1 ] && echo 8 || echo 32)}"
RAY_WORKERS="${GPU_CHECK_RAY_WORKERS:-2}"
GPUS_PER_WORKER="${GPU_CHECK_GPUS_PER_WORKER:-0.5}"
CORES="$(nproc 2>/dev/null || echo 2)"
CPU_WORKERS="${GPU_CHECK_CPU_WORKERS:-$(( CORES > 1 ? CORES - 1 : 1 ))}"

FAILED=()
STEPS="$OUT/steps.tsv"
: > "$STEPS"
log() { echo "[gpu-check $(date -u +%H:%M:%S)] $*"; }
step() {  # step NAME STATUS NOTE  -> steps.tsv (the summary's step table)
  printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$STEPS"
  [ "$2" = failed ] && FAILED+=("$1")
  return 0
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ------------------------------------------------------------------ 1. environment
T0="$(now)"
if [ ! -x "$PY" ]; then
  log "no $PY: make setup"
  make setup || { step setup failed "make setup failed"; }
fi
GPU=0
if [ "${GPU_CHECK_FORCE_CPU:-0}" != 1 ] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L > "$OUT/nvidia-smi-L.txt" 2>&1; then
  GPU=1
  nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
  log "GPU: $(head -1 "$OUT/nvidia-smi-L.txt")"
else
  log "no GPU (nvidia-smi missing or failing): CPU mode -- the CUDA parts are skipped"
fi

torch_cuda() { "$PY" -c 'import torch; print(torch.version.cuda or "none", torch.cuda.is_available())' 2>/dev/null; }
if [ "$GPU" = 1 ]; then
  PIN="$(grep -E '^torch==' requirements.txt | head -1 | cut -d= -f3)"
  read -r BUILT AVAIL <<< "$(torch_cuda)"
  if [ "${AVAIL:-False}" != True ]; then
    log "torch $("$PY" -c 'import torch; print(torch.__version__)') cannot use the GPU: installing the CUDA wheel of torch==$PIN"
    # PyPI's Linux x86_64 torch wheel is the CUDA build (the CPU build comes from download.pytorch.org/whl/cpu)
    "$PY" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "torch==$PIN" \
      && "$PY" -m pip install -q --disable-pip-version-check "torch==$PIN"
    read -r BUILT AVAIL <<< "$(torch_cuda)"
    if [ "${AVAIL:-False}" != True ]; then
      DRIVER="$(grep -o 'CUDA Version: [0-9.]*' "$OUT/nvidia-smi.txt" | grep -o '[0-9.]*$' || true)"
      CU="${TORCH_CUDA:-}"
      if [ -z "$CU" ]; then  # the newest wheel tag the driver supports
        for tag in cu130 cu129 cu128 cu126 cu124 cu121 cu118; do
          v="${tag#cu}"; v="${v:0:${#v}-1}.${v: -1}"
          if awk -v a="$v" -v b="${DRIVER:-0}" 'BEGIN { exit !(a + 0 <= b + 0) }'; then CU="$tag"; break; fi
        done
        CU="${CU:-cu128}"  # driver version not read: a common tag
      fi
      log "PyPI's wheel does not run here (driver CUDA ${DRIVER:-?}); trying download.pytorch.org/whl/$CU"
      "$PY" -m pip install -q --disable-pip-version-check "torch==$PIN+$CU" --index-url "https://download.pytorch.org/whl/$CU"
      read -r BUILT AVAIL <<< "$(torch_cuda)"
    fi
  fi
  if [ "${AVAIL:-False}" = True ]; then
    step environment ok "GPU $(head -1 "$OUT/nvidia-smi-L.txt"); torch CUDA $BUILT"
  else
    step environment failed "a GPU is present but torch cannot use it (CUDA build: ${BUILT:-none}); the CUDA steps fail"
  fi
else
  step environment ok "no GPU: CPU mode"
fi
if [ -d "$ROOT/val" ]; then
  step data ok "$ROOT"
else
  step data failed "no ILSVRC images at $ROOT (set STL_SHARED to the folder holding data/ and models/): the tests, the bench and the runs need them"
fi
"$PY" - "$OUT/env.json" "$GPU" <<'EOF'
import json, platform, subprocess, sys
import torch
env = {"gpu_mode": sys.argv[2] == "1", "torch": torch.__version__, "torch_cuda": torch.version.cuda,
       "cuda_available": torch.cuda.is_available(), "python": platform.python_version(), "host": platform.node(),
       "cpu_cores": __import__("os").cpu_count()}
if torch.cuda.is_available():
    env["gpu"] = torch.cuda.get_device_name(0)
    env["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    env["cudnn"] = torch.backends.cudnn.version()
try:
    env["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
except OSError:
    env["git_commit"] = ""
json.dump(env, open(sys.argv[1], "w"), indent=1)
print(json.dumps(env))
EOF

# ------------------------------------------------------------------ 2. the cuda tests
log "tests/test_cuda.py (the tests marked cuda$([ "$GPU" = 1 ] || echo ': they skip without a GPU'))"
T="$(now)"
STL_REQUIRE_CUDA="$GPU" STL_REQUIRE_ALL="$GPU" "$PY" -m pytest -q -rs --tb=short -p no:cacheprovider tests/test_cuda.py \
  --junitxml "$OUT/cuda-tests.xml" 2>&1 | tee "$OUT/cuda-tests.txt"
RC=${PIPESTATUS[0]}
if [ "$RC" = 0 ]; then
  step cuda-tests ok "$(tail -1 "$OUT/cuda-tests.txt") ($(elapsed "$T") s)$([ "$GPU" = 1 ] || echo '; CPU mode: the cuda-marked ones skipped')"
else
  step cuda-tests failed "$(tail -1 "$OUT/cuda-tests.txt") ($(elapsed "$T") s)"
fi

# ------------------------------------------------------------------ 3. stl bench
BENCH="$OUT/bench"
rm -f "$BENCH/bench.csv"
mkdir -p "$BENCH"
if [ "$GPU" = 1 ]; then
  DEVICE=cuda; B_IMAGES="$BENCH_IMAGES"; B_CHUNK="$BENCH_CHUNK"; B_MODELS="$MODELS"; B_PRECISIONS="$PRECISIONS"
  B_REF="$REFERENCE_IMAGES"; SETTINGS=()
else  # plumbing only: one image, one segmentation, one model, fp32 on the CPU
  DEVICE=cpu; B_IMAGES=1; B_CHUNK=1; B_MODELS="$RUN_MODEL"; B_PRECISIONS=fp32; B_REF=0
  SETTINGS=(segmentation.ks=100 segmentation.color_spaces=hsv)
fi
B_SET=(); for kv in "${SETTINGS[@]}"; do B_SET+=(--set "$kv"); done
for m in $B_MODELS; do
  for p in $B_PRECISIONS; do
    log "stl bench --model $m --device $DEVICE --precision $p --images $B_IMAGES --images-per-chunk $B_CHUNK"
    T="$(now)"
    if "$PY" -m stl.cli bench --model "$m" --device "$DEVICE" --precision "$p" --images "$B_IMAGES" \
        --images-per-chunk "$B_CHUNK" --reference-images "$B_REF" "${B_SET[@]}" --out "$BENCH" \
        > "$BENCH/bench__${m}__${p}.log" 2>&1; then
      step "bench $m $p" ok "$DEVICE, $B_IMAGES images ($(elapsed "$T") s)$([ "$GPU" = 1 ] || echo '; CPU mode: 1 image, 1 segmentation, plumbing only')"
    else
      step "bench $m $p" failed "$DEVICE: $(tail -1 "$BENCH/bench__${m}__${p}.log")"
    fi
  done
done
[ "$GPU" = 1 ] || step "bench (CUDA)" skipped "no GPU: stl bench --device cuda for $MODELS x $PRECISIONS ($BENCH_IMAGES images, chunk $BENCH_CHUNK) not run"
SIDES="$(for m in $B_MODELS; do [ "$m" = efficientnet_lite0 ] && echo 224 || echo 227; done | sort -u)"
for side in $SIDES; do  # the segmentations alone, on the same images and settings (the bench's CPU side split)
  "$PY" tools/gpu_check_tables.py segmentation "$B_IMAGES" "$side" "$BENCH/segmentation_$side.json" "${SETTINGS[@]}" \
    || step "segmentation $side" failed "timing the segmentations failed"
done
"$PY" tools/gpu_check_tables.py bench "$BENCH/bench.csv" "$BENCH" "$OUT/bench.md" > /dev/null \
  || step bench-table failed "tools/gpu_check_tables.py bench failed"

# ------------------------------------------------------------------ 4. stl run: Ray GPU workers vs the CPU
RUNS_A="$OUT/runs-cuda"; RUNS_B="$OUT/runs-cpu"
rm -rf "$RUNS_A" "$RUNS_B"
COMMON=(--dataset ilsvrc2012_val --root "$ROOT" --method STL-WL --model "$RUN_MODEL" --no-progress)
if [ "$GPU" = 1 ]; then
  A=(--limit "$RUN_IMAGES" --device cuda --executor ray --workers "$RAY_WORKERS" --gpus-per-worker "$GPUS_PER_WORKER")
  B=(--limit "$RUN_IMAGES" --device cpu --executor ray --workers "$CPU_WORKERS")
  R_SET=(); WHAT="$RUN_IMAGES images"
else  # plumbing only: Ray CPU workers vs the local executor, 1 image, 1 segmentation
  A=(--limit 1 --device cpu --executor ray --workers 1)
  B=(--limit 1 --device cpu)
  R_SET=("${B_SET[@]}"); WHAT="1 image, CPU mode"
  step "run (CUDA, Ray GPU workers)" skipped "no GPU: stl run --device cuda --executor ray --workers $RAY_WORKERS --gpus-per-worker $GPUS_PER_WORKER on $RUN_IMAGES images not run; a Ray-CPU vs local run of 1 image instead"
fi
log "stl run ${A[*]}"
T="$(now)"
"$PY" -m stl.cli run "${COMMON[@]}" "${A[@]}" "${R_SET[@]}" --out "$RUNS_A" > "$OUT/run-a.log" 2>&1
RA=$?; SA="$(elapsed "$T")"
[ "$RA" = 0 ] && step "run A: ${A[*]}" ok "$WHAT, $SA s" || step "run A: ${A[*]}" failed "exit $RA: $(tail -1 "$OUT/run-a.log")"
if [ "$RA" = 0 ]; then
  log "stl run ${B[*]}"
  T="$(now)"
  "$PY" -m stl.cli run "${COMMON[@]}" "${B[@]}" "${R_SET[@]}" --out "$RUNS_B" > "$OUT/run-b.log" 2>&1
  RB=$?; SB="$(elapsed "$T")"
  [ "$RB" = 0 ] && step "run B: ${B[*]}" ok "$WHAT, $SB s" || step "run B: ${B[*]}" failed "exit $RB: $(tail -1 "$OUT/run-b.log")"
else  # nothing to compare with: the CPU run would only spend the lease
  step "run B: ${B[*]}" skipped "run A failed"
fi
# the run files (RUNS/<dataset>/<METHOD>__<model>.h5; an unfinished run's entries lie deeper, in <file>.partial/)
FA="$(find "$RUNS_A" -maxdepth 2 -name '*.h5' 2>/dev/null | head -1)"; FB="$(find "$RUNS_B" -maxdepth 2 -name '*.h5' 2>/dev/null | head -1)"
if [ -n "$FA" ] && [ -n "$FB" ]; then
  "$PY" tools/gpu_check_tables.py runs "$FA" "$SA" "$FB" "$SB" "$OUT/runs.md" > /dev/null \
    || step runs-table failed "tools/gpu_check_tables.py runs failed"
fi

# ------------------------------------------------------------------ 5. summary
"$PY" tools/gpu_check_tables.py summary "$OUT" > /dev/null || step summary failed "the summary failed"
cat "$OUT/README.md"
log "done in $(elapsed "$T0") s; tables under $OUT"
if [ "${#FAILED[@]}" -gt 0 ]; then
  log "FAILED: ${FAILED[*]}"
  exit 1
fi
exit 0
