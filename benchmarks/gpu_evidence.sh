#!/usr/bin/env bash
# The GPU evidence of the README, stage by stage, on a GPU machine without internet that has
# CUDA torch, and in .bundle/ the other wheels (whl/) and the data archive (cifar10-jpg.tar.gz).
#
#   bash benchmarks/gpu_evidence.sh STAGE... [--budget SECONDS]
#
# Stages (each writes /tmp/ev/<stage>/ and packs its small JSON/PNG files into $OUT/<stage>.tgz):
#   gpu-tests the GPU test tier (tests/test_on_gpu.py: every precision, both loaders, the range test,
#             the reference, a resume on the GPU and on the CPU), in under a minute: run it first
#   full      python -m benchmarks.full_size: the whole job at full width, seeds 0 1 2, then the
#             figures of seed 0 (misclassified, GradCAM, per class) with `helpers report`
#   notebook  the committed notebook, executed with its saved (the assignment's) parameters
#   rules     24-epoch runs, LRMAX rule min10 against first_min, 3 seeds, widths 1 (min10 only:
#             first_min is the `full` stage), 1/2, 1/4, 1/8; RULE_WIDTHS="0.25 0.125" picks widths
#   compare   `helpers compare` at full width (the default arms, seeds 0 1 2)
#   fp16      the whole job at --precision fp16 (a T4's numerics), full width, seeds 0 1 2
#   speed     python -m benchmarks.speed: ours eager / compiled against the reference, bf16 and fp16
#   ladder    the 91%-vs-94% ladder at full width (python -m benchmarks.ladder): our default, Page's block
#             order, his LR, the reference in both block orders; seeds 0-4, a seed of every arm
#             before the next seed, so a cut-off call still leaves balanced arms
#   tricks    the opt-in extras at full width, seeds 0-4: tta-ema and ls-tta-ema (python -m benchmarks.ladder)
#   jpeg      the copy re-encoded at JPEG quality 30, 50 and 95 (python -m benchmarks.jpeg_levels), and
#             the default trained on each, full width, seeds 0-2
# A later call with the same stage continues it: finished runs are skipped (the folders are
# on the machine only while it stays warm).
# Runs that would start after the budget (default 540 s from the start) are skipped and said so.
set -uo pipefail
budget=540
stages=()
while [ $# -gt 0 ]; do
  case $1 in --budget) budget=$2; shift 2 ;; *) stages+=("$1"); shift ;; esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
OUT=${OUT:-/tmp/ev-out}; mkdir -p "$OUT"
[ -d /tmp/site ] || python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .bundle/whl/*.whl
export PYTHONPATH=/tmp/site:$root JUPYTER_PATH=/tmp/site/share/jupyter PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
[ -d /tmp/data/cifar10 ] || { mkdir -p /tmp/data && tar -xzf .bundle/cifar10-jpg.tar.gz -C /tmp/data; }
DATA=/tmp/data/cifar10
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

left() { echo $((budget - SECONDS)); }
pack() {  # the stage's small files, never checkpoints
  (cd /tmp/ev && find "$1" \( -name '*.json' -o -name '*.png' -o -name '*.md' -o -name '*.txt' -o -name '*.ipynb' \) -print0 |
     tar czf "$OUT/$1.tgz" --null -T -)
}
train() {  # train OUT_DIR [options...]: one 24-epoch run unless the budget is spent
  if [ "$(left)" -lt 60 ]; then echo "skipped (budget): $*"; return; fi
  [ -f "$1/history.json" ] && grep -q final_test_acc "$1/history.json" && { echo "done already: $1"; return; }
  local dir=$1; shift
  timeout "$(left)" python3 -m helpers train --data-dir $DATA --out "$dir" --no-progress --no-report "$@" |
    grep -E "LRMAX|epoch 24|error" || true
}

for stage in "${stages[@]}"; do
  echo "== $stage ($(left) s left)"
  mkdir -p /tmp/ev/$stage
  case $stage in
    gpu-tests)
      timeout 300 python3 -m pytest -m gpu -rs -p no:cacheprovider tests/test_on_gpu.py 2>&1 |
        tee /tmp/ev/gpu-tests/pytest.txt | tail -20 ;;
    full)
      timeout "$(left)" python3 -m benchmarks.full_size --data-dir $DATA --seeds 0 1 2 --out /tmp/ev/full
      [ -f /tmp/ev/full/seed0/history.json ] && timeout "$(left)" python3 -m helpers report /tmp/ev/full/seed0 ;;
    notebook)
      python3 -m ipykernel install --user --name python3 >/dev/null
      ln -sfn $DATA data  # the notebook's DATA_DIR = "data", relative to the project: no machine path in it
      timeout "$(left)" python3 -m helpers notebook --output /tmp/ev/notebook/superconvergence_resnet9.ipynb &&
        cp runs/notebook/*.json runs/notebook/*.png /tmp/ev/notebook/ 2>/dev/null &&
        python3 -m benchmarks.notebook_times /tmp/ev/notebook/superconvergence_resnet9.ipynb \
          --label "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1), torch $(python3 -c 'import torch; print(torch.__version__)'), $(date -u +%F), python -m helpers notebook" \
          --out /tmp/ev/notebook/notebook.json ;;
    rules)
      for w in ${RULE_WIDTHS:-1 0.5 0.25 0.125}; do
        # width 1: the full stage ran the default (its cap of 1.0 does not bind there: 0.24-0.38)
        rules="first_min_capped first_min min10"; [ "$w" = 1 ] && rules=min10
        for rule in $rules; do for s in 0 1 2; do
          train /tmp/ev/rules/w$w-$rule-s$s --width $w --seed $s --lr-max-rule $rule
        done; done
      done ;;
    compare)
      timeout "$(left)" python3 -m helpers compare --data-dir $DATA --width 1 --out /tmp/ev/compare --no-progress ;;
    fp16)
      timeout "$(left)" python3 -m benchmarks.full_size --data-dir $DATA --seeds 0 1 2 --precision fp16 --out /tmp/ev/fp16 ;;
    speed)
      timeout "$(left)" python3 -m benchmarks.speed --out /tmp/ev/speed/speed.json ;;
    ladder)
      specs=(); for s in 0 1 2 3 4; do for arm in ours ref ours-page-order ref-assignment-order ours-page-lr0.4; do
        specs+=("$arm:1:$s"); done; done
      DEVICE=cuda timeout "$(left)" python3 -m benchmarks.ladder $DATA /tmp/ev/ladder "${specs[@]}" |
        grep -E "final test|error|done" ;;
    tricks)
      specs=(); for s in 0 1 2 3 4; do for arm in tta-ema ls-tta-ema; do specs+=("$arm:1:$s"); done; done
      DEVICE=cuda timeout "$(left)" python3 -m benchmarks.ladder $DATA /tmp/ev/tricks "${specs[@]}" |
        grep -E "final test|error|done" ;;
    jpeg)
      timeout "$(left)" python3 -m benchmarks.jpeg_levels --data-dir $DATA --out /tmp/jpeg --qualities 30 50 95 \
        --json /tmp/ev/jpeg/jpeg_psnr.json
      specs=(); for s in 0 1 2; do for q in 30 50 95; do specs+=("q$q:1:$s"); done; done
      DEVICE=cuda JPEG_DIR=/tmp/jpeg timeout "$(left)" python3 -m benchmarks.ladder $DATA /tmp/ev/jpeg "${specs[@]}" |
        grep -E "final test|error|done" ;;
    *) echo "unknown stage $stage"; exit 2 ;;
  esac
  pack "$stage"
done
echo "== done ($(left) s left)"
