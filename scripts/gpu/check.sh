#!/usr/bin/env bash
# The GPU plan's one call (scripts/gpu/README.md): speed, then correctness, then the budget run.
#   BUDGET_S=560 bash scripts/gpu/check.sh      # on the GPU box (its python3 has torch), carrying gpu_stage/
#   PY=.venv/bin/python bash scripts/gpu/check.sh --tiny     # the same steps on the CPU (tests)
# BUDGET_S (default 560, of the call's 600) bounds the whole command: the steps get it less 20 s, and
# `timeout` sends one SIGTERM (no SIGKILL) if they overrun, after which scripts/gpu/check.py writes its
# files and packs its logs with SIGTERM ignored. Everything printed is tee'd to $OUT/gpu_check.log,
# unbuffered, so a step stopped at its limit still shows the lines that say where it was.
set -u
cd "$(dirname "$0")/../.."
PY=${PY:-python3}
OUT=${OUT:-results/gpu-$(date +%F)}
BUDGET_S=${BUDGET_S:-560}
mkdir -p "$OUT"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4} PYTHONUNBUFFERED=1
timeout "$BUDGET_S" $PY -m scripts.gpu.check --out "$OUT" --budget-s $(( BUDGET_S - 20 )) "$@" 2>&1 | tee "$OUT/gpu_check.log"
exit "${PIPESTATUS[0]}"
