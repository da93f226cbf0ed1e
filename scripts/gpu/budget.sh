#!/usr/bin/env bash
# Run 2 of the GPU plan (scripts/gpu/README.md): FOCA vs E2E on real CIFAR-10 in ONE device call; the
# same code as `make cifar10-budget` (scripts/studies/budget.py), fed the staged shared parts.
#   bash scripts/gpu/budget.sh                 # on the GPU box, carrying gpu_stage2/ right after run 1
#   PY=.venv/bin/python PARTS=a,b bash scripts/gpu/budget.sh --tiny   # the CPU smoke (tests)
# MINUTES (default 4.5) is the budget of the whole command; the call is cut 30 s after it. PARTS lists
# the folders searched for parts (run 2's own half, run 1's half if the box is still the same one).
set -u
cd "$(dirname "$0")/../.."
PY=${PY:-python3}
OUT=${OUT:-results/budget-$(date +%F)}
MINUTES=${MINUTES:-4.5}
PARTS=${PARTS:-gpu_stage2,gpu_stage1,/tmp/foca_stage1}
mkdir -p "$OUT"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
limit=$($PY -c "print(int($MINUTES * 60 + 30))")
timeout "$limit" $PY -m scripts.studies.budget --parts "$PARTS" --pack --out "$OUT" --minutes "$MINUTES" "$@" 2>&1 \
    | tee "$OUT/budget.log"
exit "${PIPESTATUS[0]}"
