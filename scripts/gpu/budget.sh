#!/usr/bin/env bash
# The budget run alone (FOCA vs E2E on real CIFAR-10; the plan's one call runs it as its last step,
# scripts/gpu/README.md): `make cifar10-budget`'s code (scripts/studies/budget.py), fed the staged shared parts.
#   bash scripts/gpu/budget.sh                 # on a GPU box, carrying gpu_stage/
#   PY=.venv/bin/python PARTS=a,b bash scripts/gpu/budget.sh --tiny   # the CPU smoke (tests)
# MINUTES (default 4.5) is the budget of the whole command; `timeout` sends one SIGTERM 30 s after it
# (no SIGKILL): budget.py then packs its runs, writes budget.json and its table, SIGTERM ignored.
set -u
cd "$(dirname "$0")/../.."
PY=${PY:-python3}
OUT=${OUT:-results/budget-$(date +%F)}
MINUTES=${MINUTES:-4.5}
PARTS=${PARTS:-gpu_stage}
mkdir -p "$OUT"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4} PYTHONUNBUFFERED=1
limit=$($PY -c "print(int($MINUTES * 60 + 30))")
timeout "$limit" $PY -m scripts.studies.budget --parts "$PARTS" --pack --out "$OUT" --minutes "$MINUTES" "$@" 2>&1 \
    | tee "$OUT/budget.log"
exit "${PIPESTATUS[0]}"
