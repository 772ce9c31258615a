#!/usr/bin/env bash
# The 91%-vs-94% ladder (and the JPEG levels) as a restartable queue of ARM:WIDTH:SEED runs, one at a
# time, each in RUNS/<arm>-w<width>-s<seed>. A finished run is skipped; an interrupted one continues
# from its checkpoint; a folder with neither stops it (train never overwrites a folder).
#
#   bash benchmarks/ladder.sh DATA_DIR RUNS ref:0.25:0 ours:0.25:0 q30:0.125:0 ...
#   python benchmarks/collect_runs.py --label "CPU" RUNS/* --out results/ladder/cpu.json
#
# Arms (helpers.results.LADDER): ours (the default), ours-page-order (--block-order page),
# ours-page-lr0.4 (Page's block order and LR: 0.4 annealed to ~0), ref (benchmarks/reference.py),
# ref-assignment-order, and qNN: the default on the copy re-encoded at JPEG quality NN
# (benchmarks/jpeg_levels.py; JPEG_DIR, default ~/data/jpeg). The opt-in extras: tta-ema (--tta flip
# --ema 0.99: one run records the default, TTA, EMA and both, training unchanged) and ls-tta-ema
# (the same with --label-smoothing 0.2). DEVICE (default cpu) picks the device.
set -uo pipefail
[ $# -ge 3 ] || { echo "usage: bash benchmarks/ladder.sh DATA_DIR RUNS ARM:WIDTH:SEED..." >&2; exit 2; }
data=$1 runs=$2; shift 2
jpeg=${JPEG_DIR:-$HOME/data/jpeg}
cd "$(dirname "$0")/.."
for spec in "$@"; do
  IFS=: read -r arm width seed <<< "$spec"
  d=$runs/$arm-w$width-s$seed
  if grep -q '"final_test_acc"' "$d/history.json" 2>/dev/null; then continue; fi
  common=(--device "${DEVICE:-cpu}" --out "$d" --width "$width" --seed "$seed")
  case $arm in
    ref) cmd=(python3 benchmarks/reference.py --data-dir "$data" "${common[@]}") ;;
    ref-assignment-order) cmd=(python3 benchmarks/reference.py --data-dir "$data" "${common[@]}" --block-order assignment) ;;
    *) extra=(); dir=$data
       case $arm in
         ours) ;;
         ours-page-order) extra=(--block-order page) ;;
         ours-page-lr0.4) extra=(--block-order page --lr-max 0.4 --lr-min 0.004 --schedule one_cycle_annealed) ;;
         q[0-9]*) dir=$jpeg/$arm ;;
         tta-ema) extra=(--tta flip --ema 0.99) ;;
         ls-tta-ema) extra=(--label-smoothing 0.2 --tta flip --ema 0.99) ;;
         *) echo "unknown arm $arm" >&2; exit 2 ;;
       esac
       if [ -f "$d/checkpoint.pt" ]; then cmd=(python3 -m helpers train --resume "$d")
       else cmd=(python3 -m helpers train --data-dir "$dir" "${common[@]}" --no-progress --no-report "${extra[@]}"); fi ;;
  esac
  "${cmd[@]}" || exit
  echo "== $(date +%T) done $d"
done
