#!/usr/bin/env bash
# Run 1 of the GPU plan (scripts/gpu/README.md): CUDA correctness, then speed, in ONE device call.
#   bash scripts/gpu/check.sh                  # on the GPU box (its python3 has torch); OUT=results folder
#   PY=.venv/bin/python bash scripts/gpu/check.sh --tiny     # the same steps on the CPU (tests)
# BUDGET_S (default 240) bounds the whole call; the steps get it less 15 s. Everything the steps
# print is tee'd to $OUT/gpu_check.log; scripts/gpu/check.py says what else lands in $OUT.
set -u
cd "$(dirname "$0")/../.."
PY=${PY:-python3}
OUT=${OUT:-results/gpu-$(date +%F)}
BUDGET_S=${BUDGET_S:-240}
mkdir -p "$OUT"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
timeout "$BUDGET_S" $PY -m scripts.gpu.check --out "$OUT" --budget-s $(( BUDGET_S - 15 )) "$@" 2>&1 | tee "$OUT/gpu_check.log"
exit "${PIPESTATUS[0]}"
