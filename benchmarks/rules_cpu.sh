#!/usr/bin/env bash
# LRMAX rules compared on the CPU: one 24-epoch run (defaults otherwise) per WIDTH:RULE:SEED,
# one at a time, each in RUNS/w<width>-<rule>-s<seed>. Restartable: a finished run is skipped,
# an interrupted one continues from its checkpoint (--resume); a folder with neither stops it (train
# never overwrites a folder: move it away).
#
#   bash benchmarks/rules_cpu.sh DATA_DIR RUNS 0.125:first_min:0 0.125:min10:0 ...
#   python benchmarks/collect_runs.py --label "CPU" RUNS/* --out results/lr_rules/cpu.json
set -uo pipefail
[ $# -ge 3 ] || { echo "usage: bash benchmarks/rules_cpu.sh DATA_DIR RUNS WIDTH:RULE:SEED..." >&2; exit 2; }
data=$1 runs=$2; shift 2
cd "$(dirname "$0")/.."
for spec in "$@"; do
  IFS=: read -r width rule seed <<< "$spec"
  d=$runs/w$width-$rule-s$seed
  if grep -q '"final_test_acc"' "$d/history.json" 2>/dev/null; then continue; fi
  if [ -f "$d/checkpoint.pt" ]; then python3 -m helpers train --resume "$d"
  else python3 -m helpers train --data-dir "$data" --device cpu --out "$d" --no-progress \
         --no-report --width "$width" --seed "$seed" --lr-max-rule "$rule"; fi || exit
  echo "== $(date +%T) done $d"
done
