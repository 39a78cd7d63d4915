#!/usr/bin/env bash
# Side-by-side whole-process timing of STL against another git revision (issue 18, item 2).
#
#   tools/bench_against.sh REV [N] [ROUNDS]
#
# Checks REV out into a git worktree (same venv), then runs `stl localize` (STL-WL, the default
# model EfficientNet-Lite0 fp32) on the first N (default 8) real ILSVRC val images of ../shared,
# once with REV's code and once with this checkout's, alternating, ROUNDS times (default 1). Prints
# each run's wall seconds per image, the load average before it, and the ratio REV / HEAD.
# HEAD_ARGS: extra `stl localize` options for this checkout's run only (e.g. HEAD_ARGS="--engine onnx",
# an engine REV may not have); REV always runs its defaults.
# Both revisions have `stl localize IMAGES... --out DIR` (25ac78a onwards). Run it alone: no other
# heavy job on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
REV=${1:?usage: tools/bench_against.sh REV [N] [ROUNDS]}
N=${2:-8}
ROUNDS=${3:-1}
PY=${PYTHON:-.venv/bin/python}
SHARED=${STL_SHARED:-$(cd .. && pwd)/shared}
VAL="$SHARED/data/ilsvrc2012-val-227/val"
[ -d "$VAL" ] || { echo "bench_against: no real images at $VAL" >&2; exit 2; }
mapfile -t IMAGES < <(ls "$VAL"/*.JPEG | sort | head -n "$N")
WT=$(mktemp -d "${TMPDIR:-/tmp}/stl-rev-XXXX")
git worktree add --detach -q "$WT" "$REV"
trap 'git worktree remove --force "$WT" >/dev/null 2>&1 || true' EXIT
here=$(pwd)

run() {  # $1: code root, then extra localize options -> prints wall seconds
  local root=$1 out
  shift
  out=$(mktemp -d)
  local t0 t1
  t0=$(date +%s.%N)
  (cd "$root" && PYTHONPATH="$root" STL_SHARED="$SHARED" MPLBACKEND=Agg "$here/$PY" -c \
     'import sys; from stl.cli import main; sys.exit(main())' localize "${IMAGES[@]}" --out "$out" "$@" \
     >"$out.log" 2>&1) || { echo "bench_against: the run in $root failed, see $out.log" >&2; exit 1; }
  t1=$(date +%s.%N)
  python3 -c "print(f'{($t1 - $t0):.1f}')"
}

printf '%-12s %-10s %10s %12s  %s\n' round code "wall s" "s/image" "load average before"
for r in $(seq 1 "$ROUNDS"); do
  la=$(cut -d' ' -f1-3 /proc/loadavg); a=$(run "$WT")
  printf '%-12s %-10s %10s %12s  %s\n' "$r" "$REV" "$a" "$(python3 -c "print(f'{$a / $N:.1f}')")" "$la"
  la=$(cut -d' ' -f1-3 /proc/loadavg); read -r -a head_args <<<"${HEAD_ARGS:-}"; b=$(run "$here" "${head_args[@]}")
  printf '%-12s %-10s %10s %12s  %s\n' "$r" "HEAD${HEAD_ARGS:+ $HEAD_ARGS}" "$b" "$(python3 -c "print(f'{$b / $N:.1f}')")" "$la"
  echo "ratio $REV / HEAD: $(python3 -c "print(f'{$a / $b:.2f}x')")"
done
